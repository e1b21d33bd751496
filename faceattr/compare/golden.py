"""Golden baselines: a refactor must not silently change the science.

``fixtures/golden/<name>.toml`` is a small synthetic protocol; ``fixtures/golden/<name>.json``
holds what it produced: every record's verdicts exactly (``status``, ``falsified``,
``falsified_simple``, ``falsified_theorem``) and its metrics (``margin_rad``,
``pairwise_violation_frac``, ``d_high_rad``, ``d_low_rad``, ``score_clean``) to within
``TOLERANCE_ABS``, plus each method's ledger and FR count. The golden test re-runs the
protocol and fails on any moved verdict or any metric beyond the tolerance.

Update (one explicit command; review the JSON diff before committing)::

    python -m faceattr.compare.golden --update          # all fixtures/golden/*.toml
    python -m faceattr.compare.golden                   # check only; exit 1 on a change

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

__all__ = ["GOLDEN_DIR", "TOLERANCE_ABS", "GoldenDiff", "compare_golden", "golden_names",
           "main", "run_snapshot", "snapshot"]

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "golden"
#: Absolute tolerance for metrics (radians, fractions, scores). Float32 embeddings on one
#: torch thread are bit-stable on one machine; 1e-6 leaves room for another CPU's last bits
#: while any change of q, K, fill, seed or verdict logic moves margins by far more.
TOLERANCE_ABS = 1e-6
_VERDICTS = ("status", "falsified", "falsified_simple", "falsified_theorem")
_METRICS = ("margin_rad", "pairwise_violation_frac", "d_high_rad", "d_low_rad", "score_clean")
_LEDGER = ("n_pairs", "n_valid", "n_trivial", "n_error", "fr_itt_count")


@dataclass(frozen=True, slots=True)
class GoldenDiff:
    """One difference between a golden snapshot and a fresh run.

    ``kind``: ``verdict`` (a verdict or status moved), ``metric`` (beyond tolerance),
    ``ledger`` (counts of a method), ``missing`` / ``extra`` (records), ``format``.
    """

    kind: Literal["verdict", "metric", "ledger", "missing", "extra", "format"]
    key: str
    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.key} {self.field}: expected {self.expected}, got {self.actual}"


def snapshot(run_root: Path, *, name: str) -> dict[str, Any]:
    """The golden snapshot of a complete run folder (records and summary only)."""
    from faceattr.experiments.run import RunFolder, load_records, load_summary

    folder = RunFolder(run_root)
    records = load_records(folder)
    summary = load_summary(folder)
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows[f"{r.model}/{r.method}/{r.pair_id}"] = {
            "status": r.status, "falsified": r.falsified,
            "falsified_simple": r.falsified_simple, "falsified_theorem": r.falsified_theorem,
            "margin_rad": r.margin_rad, "pairwise_violation_frac": r.pairwise_violation_frac,
            "d_high_rad": r.d_high_rad, "d_low_rad": r.d_low_rad, "score_clean": r.score_clean}
    ledger = {f"{m.model}/{m.method}": {
        "n_pairs": m.n_pairs, "n_valid": m.n_valid, "n_trivial": m.n_trivial,
        "n_error": m.n_error, "fr_itt_count": m.fr_itt.count, "fr_itt": m.fr_itt.estimate}
        for m in summary.methods.values()}
    return {"name": name, "tolerance_abs": TOLERANCE_ABS,
            "protocol_sha256": summary.protocol_sha256,
            "records_sha256": hashlib.sha256(folder.records.read_bytes()).hexdigest(),
            "records": dict(sorted(rows.items())), "methods": dict(sorted(ledger.items()))}


def _close(expected: object, actual: object, tol: float) -> bool:
    if expected is None or actual is None:
        return expected is actual
    if isinstance(expected, bool) or isinstance(actual, bool) or \
            not isinstance(expected, (int, float)) or not isinstance(actual, (int, float)):
        return False
    return math.isfinite(actual) and abs(float(expected) - float(actual)) <= tol


def _shown(row: Mapping[str, Any], name: str) -> str:
    if name in row:
        return repr(row[name])
    return "(absent)"  # a field missing from one side is itself the difference


def compare_golden(expected: Mapping[str, Any], actual: Mapping[str, Any], *,
                   tolerance_abs: float = TOLERANCE_ABS) -> tuple[GoldenDiff, ...]:
    """Every verdict must match exactly, every metric within ``tolerance_abs``.

    Raises nothing on a difference: returns them all (empty means the baseline holds).
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
        for name in _VERDICTS:
            if name not in e or name not in a or e[name] != a[name]:
                diffs.append(GoldenDiff("verdict", key, name, _shown(e, name), _shown(a, name)))
        for name in _METRICS:
            if name not in e or name not in a or not _close(e[name], a[name], tolerance_abs):
                diffs.append(GoldenDiff("metric", key, name, _shown(e, name), _shown(a, name)))
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
    """``python -m faceattr.compare.golden [--update] [--name NAME] [--dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m faceattr.compare.golden",
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
            for d in diffs:
                print(f"{name}: {d}")
            print(f"{name}: {'CHANGED' if diffs else 'ok'} ({len(diffs)} difference(s))")
            failed = failed or bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
