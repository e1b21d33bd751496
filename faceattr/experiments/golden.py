"""Golden baselines: a refactor must not silently change the science.

``fixtures/golden/<name>.toml`` is a small synthetic protocol; ``fixtures/golden/<name>.json``
holds what it produced: every record's verdicts (``status``, ``falsified``,
``falsified_simple``, ``falsified_theorem``) and its metrics (``margin_rad``,
``pairwise_violation_frac``, ``d_high_rad``, ``d_low_rad``, ``score_clean``), plus each
method's ledger and FR count. The golden test re-runs the protocol and fails on any moved
status or ledger count, any metric beyond its cross-machine float tolerance, and any moved
verdict except on a *boundary* record.

The tolerance is the one rule of :mod:`faceattr.stats.tolerance` (also used by
``faceattr compare``), computed per record from its K drifts: a fresh snapshot carries it in
each row's ``float_tolerance`` (derived, never compared). A row's tolerance is the larger of
the two snapshots' when both carry one; a snapshot pair without any (hand-made) falls back to
the rule applied to the means, all K draws at the mean drift (smaller than the per-draw rule
when the drifts spread: ``1/sin`` is convex). A verdict that moved on a record whose verdict
lies within the tolerance of its decision boundary (according to every snapshot that carries a
tolerance) is reported as kind ``boundary``: informational, not a failure.

Update (one explicit command; review the JSON diff before committing)::

    python -m faceattr.experiments.golden --update          # all fixtures/golden/*.toml
    python -m faceattr.experiments.golden                   # check only; exit 1 on a change

The SHA-256 of ``records.jsonl`` and of the protocol are stored for information only: they
change with any new record field, which is not a change in the science.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faceattr.io import read_json, write_json
from faceattr.stats.tolerance import (
    RecordTolerance,
    TheoremSettings,
    angle_tolerance,
    cosine_tolerance,
    record_tolerance,
    within,
)

__all__ = ["GOLDEN_DIR", "TOLERANCE_RULE", "GoldenDiff", "compare_golden", "golden_failures",
           "golden_names", "main", "run_snapshot", "snapshot"]

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "golden"
#: The tolerance rule a snapshot's ``float_tolerance`` rows come from (informational).
TOLERANCE_RULE = "faceattr.stats.tolerance: per record, cross-machine float32 bound"
_VERDICTS = ("status", "falsified", "falsified_simple", "falsified_theorem")
_METRICS = ("margin_rad", "pairwise_violation_frac", "d_high_rad", "d_low_rad", "score_clean")
_LEDGER = ("n_pairs", "n_valid", "n_trivial", "n_error", "fr_itt_count")
_TOL_KEY = "float_tolerance"


@dataclass(frozen=True, slots=True)
class GoldenDiff:
    """One difference between a golden snapshot and a fresh run.

    ``kind``: ``verdict`` (a status, or a verdict away from its decision boundary, moved),
    ``boundary`` (a verdict moved on a record within the float tolerance of its decision
    boundary: informational, not a failure), ``metric`` (beyond its float tolerance),
    ``ledger`` (counts of a method), ``missing`` / ``extra`` (records), ``format``.
    """

    kind: Literal["verdict", "boundary", "metric", "ledger", "missing", "extra", "format"]
    key: str
    field: str
    expected: str
    actual: str

    @property
    def is_failure(self) -> bool:
        """Every kind but ``boundary`` fails the golden check."""
        return self.kind != "boundary"

    def __str__(self) -> str:
        text = f"{self.kind}: {self.key} {self.field}: expected {self.expected}, got {self.actual}"
        if self.kind == "boundary":
            text += " (within the float tolerance of its decision boundary; informational)"
        return text


def golden_failures(diffs: Sequence[GoldenDiff]) -> tuple[GoldenDiff, ...]:
    """The differences that fail the check (all but ``boundary``)."""
    return tuple(d for d in diffs if d.is_failure)


def snapshot(run_root: Path, *, name: str) -> dict[str, Any]:
    """The golden snapshot of a complete run folder (records and summary only).

    Each row carries its ``float_tolerance`` (:func:`faceattr.stats.tolerance.record_tolerance`
    with the run's Theorem 3.5 settings), derived from the record's K drifts.
    """
    from faceattr.runfolder.folder import RunFolder, load_records, load_summary

    folder = RunFolder(run_root)
    records = load_records(folder)
    summary = load_summary(folder)
    theorem = TheoremSettings.from_protocol(read_json(folder.protocol))
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows[f"{r.model}/{r.method}/{r.pair_id}"] = {
            "status": r.status, "falsified": r.falsified,
            "falsified_simple": r.falsified_simple, "falsified_theorem": r.falsified_theorem,
            "margin_rad": r.margin_rad, "pairwise_violation_frac": r.pairwise_violation_frac,
            "d_high_rad": r.d_high_rad, "d_low_rad": r.d_low_rad, "score_clean": r.score_clean,
            _TOL_KEY: record_tolerance(r, theorem).to_json()}
    ledger = {f"{m.model}/{m.method}": {
        "n_pairs": m.n_pairs, "n_valid": m.n_valid, "n_trivial": m.n_trivial,
        "n_error": m.n_error, "fr_itt_count": m.fr_itt.count, "fr_itt": m.fr_itt.estimate}
        for m in summary.methods.values()}
    return {"name": name, "tolerance_rule": TOLERANCE_RULE,
            "protocol_sha256": summary.protocol_sha256,
            "records_sha256": hashlib.sha256(folder.records.read_bytes()).hexdigest(),
            "records": dict(sorted(rows.items())), "methods": dict(sorted(ledger.items()))}


def _close(expected: object, actual: object, tol: float) -> bool:
    if expected is None or actual is None:
        return expected is actual
    if isinstance(expected, bool) or isinstance(actual, bool) or \
            not isinstance(expected, (int, float)) or not isinstance(actual, (int, float)):
        return False
    return within(float(expected), float(actual), tol)


def _from_means(row: Mapping[str, Any]) -> RecordTolerance:
    """The rule applied to a row without drifts: every draw at the mean drift (hand-made
    snapshots only; a fresh snapshot always carries its per-draw tolerance)."""
    def num(name: str) -> float | None:
        if name not in row:
            return None
        value = row[name]
        return float(value) if isinstance(value, (int, float)) and \
            not isinstance(value, bool) else None

    d_high, d_low, score = num("d_high_rad"), num("d_low_rad"), num("score_clean")
    margin = num("margin_rad")
    t_high = None if d_high is None else angle_tolerance(min(max(d_high, 0.0), math.pi))
    t_low = None if d_low is None else angle_tolerance(min(max(d_low, 0.0), math.pi))
    t_margin = None if t_high is None or t_low is None else t_high + t_low
    return RecordTolerance(
        score_clean=None if score is None else cosine_tolerance(score), d_high_rad=t_high,
        d_low_rad=t_low, margin_rad=t_margin,
        pairwise_violation_frac=None if t_margin is None else 0.0, p_high_range=None,
        p_low_range=None,
        boundary_simple=margin is not None and t_margin is not None and abs(margin) <= t_margin,
        boundary_theorem=None)


def _tolerances(e: Mapping[str, Any], a: Mapping[str, Any]) -> list[RecordTolerance]:
    found = [RecordTolerance.from_json(row[_TOL_KEY]) for row in (e, a) if _TOL_KEY in row]
    return found or [_from_means(a)]


def _verdict_rule_boundary(name: str, e: Mapping[str, Any], a: Mapping[str, Any],
                           tolerances: Sequence[RecordTolerance]) -> bool:
    """Whether a moved verdict ``name`` is a boundary move (see the module docstring)."""
    if e["status"] != a["status"] or e["status"] != "valid":
        return False  # a status change, or a fixed (trivial / error) verdict
    if name in ("falsified_simple", "falsified_theorem"):
        rules = [name.removeprefix("falsified_")]
    else:  # the primary verdict: boundary through the rule it equals on both sides
        rules = [rule for rule in ("simple", "theorem")
                 if f"falsified_{rule}" in e and f"falsified_{rule}" in a
                 and e[f"falsified_{rule}"] == e["falsified"]
                 and a[f"falsified_{rule}"] == a["falsified"]]
    return any(all(t.boundary(rule) for t in tolerances) for rule in rules)


def _shown(row: Mapping[str, Any], name: str) -> str:
    if name in row:
        return repr(row[name])
    return "(absent)"  # a field missing from one side is itself the difference


def compare_golden(expected: Mapping[str, Any],
                   actual: Mapping[str, Any]) -> tuple[GoldenDiff, ...]:
    """Statuses and ledgers exactly, verdicts exactly away from the decision boundary, metrics
    within their cross-machine float tolerance (module docstring).

    Raises nothing on a difference: returns them all, ``boundary`` ones included (empty means
    the baseline holds exactly; :func:`golden_failures` keeps the failing ones).
    """
    diffs: list[GoldenDiff] = []
    for part in ("records", "methods"):
        if part not in expected or part not in actual:
            diffs.append(GoldenDiff("format", part, "(section)", "present", "absent"))
    if diffs:
        return tuple(diffs)
    exp_r, act_r = expected["records"], actual["records"]
    for key in sorted(set(exp_r) - set(act_r)):
        diffs.append(GoldenDiff("missing", key, "(record)", "present", "absent"))
    for key in sorted(set(act_r) - set(exp_r)):
        diffs.append(GoldenDiff("extra", key, "(record)", "absent", "present"))
    for key in sorted(set(exp_r) & set(act_r)):
        e, a = exp_r[key], act_r[key]
        if "status" not in e or "status" not in a:
            diffs.append(GoldenDiff("format", key, "status", _shown(e, "status"),
                                    _shown(a, "status")))
            continue
        tolerances = _tolerances(e, a)
        for name in _VERDICTS:
            if name not in e or name not in a or e[name] != a[name]:
                kind: Literal["verdict", "boundary"] = "verdict"
                if name in e and name in a and _verdict_rule_boundary(name, e, a, tolerances):
                    kind = "boundary"
                diffs.append(GoldenDiff(kind, key, name, _shown(e, name), _shown(a, name)))
        for name in _METRICS:
            tol = max(t.metric(name) or 0.0 for t in tolerances)
            if name not in e or name not in a or not _close(e[name], a[name], tol):
                diffs.append(GoldenDiff("metric", key, name, _shown(e, name),
                                        f"{_shown(a, name)} (tolerance {tol:.2g})"))
    exp_m, act_m = expected["methods"], actual["methods"]
    for key in sorted(set(exp_m) | set(act_m)):
        if key not in exp_m or key not in act_m:
            diffs.append(GoldenDiff("ledger", key, "(method)", str(key in exp_m),
                                    str(key in act_m)))
            continue
        for name in _LEDGER:
            if exp_m[key][name] != act_m[key][name]:
                diffs.append(GoldenDiff("ledger", key, name, repr(exp_m[key][name]),
                                        repr(act_m[key][name])))
    return tuple(diffs)


def run_snapshot(protocol_path: Path, reports_dir: Path, *, name: str) -> dict[str, Any]:
    """Run ``protocol_path`` into ``reports_dir`` (one torch thread) and snapshot it."""
    import torch

    from faceattr.experiments.run import run_protocol
    from faceattr.protocol import load_protocol

    torch.set_num_threads(1)
    folder = run_protocol(load_protocol(protocol_path), reports_dir, progress=False)
    return snapshot(folder.root, name=name)


def golden_names(directory: Path = GOLDEN_DIR) -> list[str]:
    """Names of the golden protocols (``<name>.toml`` files)."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceattr.experiments.golden [--update] [--name NAME] [--dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m faceattr.experiments.golden",
                                     description="Check (default) or rewrite golden baselines.")
    parser.add_argument("--update", action="store_true",
                        help="rewrite fixtures/golden/<name>.json from a fresh run")
    parser.add_argument("--name", action="append", help="only this golden protocol")
    parser.add_argument("--dir", type=Path, default=GOLDEN_DIR, help="golden folder")
    args = parser.parse_args(argv)
    names = args.name or golden_names(args.dir)
    if not names:
        print(f"no golden protocols (*.toml) in {args.dir}", file=sys.stderr)
        return 2
    failed = False
    with tempfile.TemporaryDirectory(prefix="faceattr-golden-") as tmp:
        for name in names:
            protocol = args.dir / f"{name}.toml"
            if not protocol.exists():
                print(f"{protocol}: no such golden protocol", file=sys.stderr)
                return 2
            fresh = run_snapshot(protocol, Path(tmp) / name, name=name)
            target = args.dir / f"{name}.json"
            if args.update:
                write_json(target, fresh)
                print(f"wrote {target} ({len(fresh['records'])} records); review the diff")
                continue
            if not target.exists():
                print(f"{target}: missing; run with --update", file=sys.stderr)
                return 2
            diffs = compare_golden(read_json(target), fresh)
            failures = golden_failures(diffs)
            for d in diffs:
                print(f"{name}: {d}")
            print(f"{name}: {'CHANGED' if failures else 'ok'} ({len(failures)} difference(s)); "
                  f"{len(diffs) - len(failures)} boundary verdict move(s), informational")
            failed = failed or bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
