"""The Python API for notebooks: run a protocol and judge its claims, or load a finished run.

::

    import faceattr
    run = faceattr.run("my_study.toml")          # runs (or reuses) the run, judges every claim
    run.passed, run.summary.method("saliency").fr_itt, run.report
    old = faceattr.load_run("reports/my_study-0123456789ab")   # verified before it is read

The same run folder, the same identity and integrity rules and the same claims as
``faceattr validate`` (which judges each claim as a pytest check); :func:`run` judges them
in-process and writes ``claims.json`` and ``report.html`` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceattr.claims import ClaimResult, evaluate_claim
from faceattr.errors import GateFailedError
from faceattr.experiments.run import gate_failure, run_protocol
from faceattr.gate.judging import run_artefacts, write_not_evaluated, write_verdicts
from faceattr.io import read_json
from faceattr.protocol import load_protocol
from faceattr.records import PairRecord
from faceattr.runfolder.folder import RunFolder, load_records, load_summary, verify_run
from faceattr.runfolder.summary import RunSummary

__all__ = ["Run", "load_run", "run"]


@dataclass(frozen=True)
class Run:
    """A run folder's verified artefacts.

    Attributes
    ----------
    folder : Path
        ``reports/<name>-<identity hash>/``.
    summary : RunSummary or None
        None when the model gate stopped the run (see ``claims``).
    records : tuple of PairRecord
    claims : dict or None
        ``claims.json`` (every declared claim's outcome), None before validation.
    report : Path or None
        ``report.html``, when written.
    """

    folder: Path
    summary: RunSummary | None
    records: tuple[PairRecord, ...]
    claims: dict[str, Any] | None
    report: Path | None

    @property
    def passed(self) -> bool:
        """Whether every declared claim passed (False when not validated)."""
        return self.claims is not None and bool(self.claims["gate_passed"])


def load_run(folder: str | Path) -> Run:
    """Load a run folder after verifying every artefact against its recorded hash.

    Raises
    ------
    IntegrityError
        An artefact was edited after the run, or the summary disagrees with its records.
    """
    run_folder = RunFolder(Path(folder))
    verify_run(run_folder)
    summary = load_summary(run_folder) if run_folder.summary.exists() else None
    records = tuple(load_records(run_folder)) if run_folder.records.exists() else ()
    claims = read_json(run_folder.claims) if run_folder.claims.exists() else None
    report = run_folder.report if run_folder.report.exists() else None
    return Run(folder=run_folder.root, summary=summary, records=records, claims=claims,
               report=report)


def _judge(spec: Any, artefacts: Any) -> tuple[ClaimResult | None, str | None]:
    try:
        return evaluate_claim(spec, artefacts), None
    except Exception as exc:  # noqa: BLE001 — a claim that cannot be judged is its own outcome
        return None, f"{type(exc).__name__}: {exc}"


def run(protocol_path: str | Path, *, reports_dir: str | Path = "reports", threads: int = 1,
        force_rerun: bool = False, progress: bool = False) -> Run:
    """Run (or reuse) a protocol, judge every declared claim and write the report.

    Parameters
    ----------
    protocol_path : str or Path
        The protocol TOML.
    reports_dir : str or Path
        Where run folders live (default ``./reports``).
    threads : int
        torch CPU threads for the run.
    force_rerun : bool
        Discard the run folder's contents first.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Run
        With ``claims`` and ``report``; ``passed`` is the gate's verdict.
    """
    protocol = load_protocol(Path(protocol_path))
    try:
        folder = run_protocol(protocol, Path(reports_dir), threads=threads, progress=progress,
                              force_rerun=force_rerun)
    except GateFailedError as exc:
        if exc.root is None or gate_failure(exc.root) is None:
            raise
        write_not_evaluated(protocol, exc.root, str(exc))
        return load_run(exc.root)
    summary = load_summary(folder)
    artefacts = run_artefacts(protocol, folder, summary)
    results: dict[str, ClaimResult] = {}
    errors: dict[str, str] = {}
    for spec in protocol.claims:
        result, error = _judge(spec, artefacts)
        if result is not None:
            results[spec.id] = result
        if error is not None:
            errors[spec.id] = error
    write_verdicts(protocol, folder, summary, results, errors)
    return load_run(folder.root)
