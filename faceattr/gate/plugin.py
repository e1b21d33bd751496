"""The pre-submission gate's pytest plugin: every claim a protocol declares is one check.

Usage: ``faceattr validate PROTOCOL ...`` (which runs ``pytest --pyargs faceattr.gate.checks -p
faceattr.gate.plugin --protocol PATH ... [--reports-dir DIR] [--force-rerun]``), or, in a
study's own suite, ``pytest_plugins = ("faceattr.gate.plugin",)`` in a conftest beside a module
that imports :mod:`faceattr.gate.checks`. Each
protocol is run first when its run folder is missing or incomplete (a change of the protocol,
the code, the weights, the data or the libraries gives a new folder); a reused folder is
verified against the hashes recorded when it was written. At the end, ``claims.json`` and
``report.html`` are written into each run folder, under its lock. When the model gate fails,
the run stops once and every claim of that protocol fails as "not evaluated"; the report says
so. pytest-xdist is refused: the runs, the claims and the report live in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from faceattr.claims import ClaimResult, ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.claims.registry import claim_kind
from faceattr.errors import GateFailedError, InputError
from faceattr.experiments.executor import protocol_on_device
from faceattr.experiments.run import run_protocol
from faceattr.gate.judging import run_artefacts, write_not_evaluated, write_verdicts
from faceattr.protocol import Protocol, load_protocol
from faceattr.runfolder.folder import RunFolder, load_summary
from faceattr.runfolder.summary import RunSummary


@dataclass
class _Session:
    protocols: list[Protocol]
    reports_dir: Path
    threads: int
    force_rerun: bool = False
    runs: dict[str, tuple[RunFolder, RunSummary]] = field(default_factory=dict)
    # protocol path -> (run folder or None, why no claim of it could be evaluated)
    stopped: dict[str, tuple[Path | None, str]] = field(default_factory=dict)
    rerun_done: set[str] = field(default_factory=set)
    artefacts: dict[str, RunArtefacts] = field(default_factory=dict)
    results: dict[str, dict[str, ClaimResult]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)


_STATE: dict[str, _Session] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faceattr")
    group.addoption("--protocol", action="append", default=[], metavar="PATH",
                    help="protocol TOML to validate (repeatable)")
    group.addoption("--reports-dir", default="reports", metavar="DIR",
                    help="where run folders live (default: reports)")
    group.addoption("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    group.addoption("--device", default=None, metavar="DEVICE",
                    help="cpu, cuda, cuda:N or mps (default: each protocol's [execution] "
                         "device, cpu when it names none)")
    group.addoption("--force-rerun", action="store_true",
                    help="discard the protocols' run folders and run them again")


def _refuse_xdist(config: pytest.Config) -> None:
    workers = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if hasattr(config, "workerinput") or workers or dist not in (None, "no"):
        raise pytest.UsageError(
            "faceattr's validation suite does not run under pytest-xdist (-n/--dist): the "
            "runs, the claims and the report are one process's state; run it without -n "
            "(the runs themselves use --threads)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim_family(name): the claim family a gate check "
                                       "judges ('*': every family no other check names)")
    _refuse_xdist(config)
    # a suite's conftest may fill ``config.option.protocol`` with its defaults (tryfirst)
    paths = [Path(p) for p in config.getoption("--protocol")]
    if not paths:
        raise pytest.UsageError("no protocol to validate: give --protocol PATH (or run "
                                "`faceattr validate PROTOCOL.toml`)")
    threads = int(config.getoption("--threads"))
    torch.set_num_threads(threads)
    try:
        device = config.getoption("--device")
        protocols = [protocol_on_device(load_protocol(p), device) for p in paths]
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None
    _STATE["session"] = _Session(protocols=protocols,
                                 reports_dir=Path(config.getoption("--reports-dir")),
                                 threads=threads,
                                 force_rerun=bool(config.getoption("--force-rerun")))


def _session() -> _Session:
    return _STATE["session"]


def _family_of(function: object) -> str:
    marker = getattr(function, "pytestmark", [])
    names = [m.args[0] for m in marker if m.name == "claim_family"]
    if len(names) != 1:
        raise pytest.UsageError(f"gate check {function!r} needs one @pytest.mark.claim_family")
    return str(names[0])


def _checked_families(module: object) -> set[str]:
    return {_family_of(obj) for name, obj in vars(module).items()
            if name.startswith("test_") and callable(obj)} - {"*"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim" not in metafunc.fixturenames:
        return
    family = _family_of(metafunc.function)
    named = _checked_families(metafunc.module)

    def judged_here(spec: ClaimSpec) -> bool:
        kind_family = claim_kind(spec.kind).family
        return kind_family == family or (family == "*" and kind_family not in named)

    cases = [(protocol, spec) for protocol in _session().protocols for spec in protocol.claims
             if judged_here(spec)]
    metafunc.parametrize("claim", cases, ids=[f"{p.name}:{s.id}" for p, s in cases])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    del session
    # a family the protocols declare no claim of has nothing to check: deselect its empty
    # parametrisation instead of reporting a skip
    def _is_empty(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("skip")
        return marker is not None and "empty parameter set" in str(marker.kwargs.get("reason"))

    empty = [item for item in items if isinstance(item, pytest.Function)
             and "claim" in item.fixturenames and _is_empty(item)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


class NotEvaluatedError(Exception):
    """The protocol's run stopped (model gate failed, or a user input error): its claims are
    not evaluated."""


def _run(protocol: Protocol) -> tuple[RunFolder, RunSummary]:
    state = _session()
    key = protocol.source_path
    if key in state.stopped:
        raise NotEvaluatedError(state.stopped[key][1])
    if key not in state.runs:
        try:
            folder = run_protocol(protocol, state.reports_dir, threads=state.threads,
                                  progress=True, force_rerun=state.force_rerun)
        except GateFailedError as exc:
            state.stopped[key] = (exc.root, str(exc))
            raise NotEvaluatedError(str(exc)) from None
        except InputError as exc:
            state.stopped[key] = (None, str(exc))
            raise NotEvaluatedError(str(exc)) from None
        state.runs[key] = (folder, load_summary(folder))
    return state.runs[key]


def _artefacts(protocol: Protocol) -> RunArtefacts:
    state = _session()
    if protocol.source_path not in state.artefacts:
        folder, summary = _run(protocol)
        state.artefacts[protocol.source_path] = run_artefacts(protocol, folder, summary)
    return state.artefacts[protocol.source_path]


@pytest.fixture
def judge() -> Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]:
    """Judge a declared claim on its protocol's run and record the verdict for the report."""

    def _judge(case: tuple[Protocol, ClaimSpec]) -> ClaimResult:
        protocol, spec = case
        state = _session()
        try:
            artefacts = _artefacts(protocol)
        except NotEvaluatedError as exc:
            pytest.fail(f"{spec.id}: not evaluated: {exc}", pytrace=False)
        try:
            result = evaluate_claim(spec, artefacts)
        except Exception as exc:
            state.errors.setdefault(protocol.source_path, {})[spec.id] = \
                f"{type(exc).__name__}: {exc}"
            raise
        state.results.setdefault(protocol.source_path, {})[spec.id] = result
        return result

    return _judge


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    del exitstatus
    if hasattr(session.config, "workerinput") or "session" not in _STATE:
        return
    state = _session()
    for protocol in state.protocols:
        line = _finish_protocol(protocol, state)
        if line is not None:
            session.config.stash[_REPORT_LINES] = [
                *session.config.stash.get(_REPORT_LINES, []), line]


def _finish_protocol(protocol: Protocol, state: _Session) -> str | None:
    """Write claims.json, validity.json and the report of one protocol's run (locked, each
    recorded in the folder's ledger); the terminal line to print."""
    key = protocol.source_path
    if key in state.stopped:
        root, why = state.stopped[key]
        if root is None:
            return f"{protocol.name}: gate FAILED (not evaluated: {why})"
        _, report = write_not_evaluated(protocol, root, why)
        return f"{protocol.name}: gate FAILED (not evaluated: {why}); report: {report}"
    if key not in state.runs:
        return None
    folder, summary = state.runs[key]
    document, report = write_verdicts(protocol, folder, summary, state.results.get(key, {}),
                                      state.errors.get(key, {}))
    verdict = "PASSED" if document["gate_passed"] else "FAILED"
    return (f"{protocol.name}: gate {verdict} ({document['n_passed']}/"
            f"{document['n_declared']} claims); report: {report}")


_REPORT_LINES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    del exitstatus
    for line in config.stash.get(_REPORT_LINES, []):
        terminalreporter.write_line(line)
