"""Determinism stage: the protocol re-run in fresh processes gives the same bytes.

Two worker processes re-run the run's first ``n_pairs`` pairs: one with the method order
reversed and one pair per batch — its records must be byte-identical to the main run's
records of those pairs (PITFALLS.md #14); one with the seed changed — the records of the
stochastic methods must differ. The outcome goes to ``determinism.json`` for the claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from faceattr.io import write_json
from faceattr.runfolder.determinism import DeterminismResult, load_determinism

__all__ = ["DeterminismResult", "load_determinism", "run_determinism_stage"]


def _worker(raw: dict[str, Any], out: Path, n_pairs: int, threads: int, where: str) -> Path:
    spec = out / "protocol_raw.json"
    write_json(spec, raw)
    code = ("import sys, json, torch; from pathlib import Path; "
            "from faceattr.protocol import parse_protocol; "
            "from faceattr.experiments.run import run_protocol; "
            f"torch.set_num_threads({threads}); "
            "raw = json.loads(Path(sys.argv[1]).read_text()); "
            "p = parse_protocol(raw, sys.argv[4]); "
            "print(run_protocol(p, Path(sys.argv[2]), progress=False, "
            "limit_pairs=int(sys.argv[3])).root)")
    # the original protocol path: relative paths in it are taken from its folder
    done = subprocess.run([sys.executable, "-c", code, str(spec), str(out / "reports"),
                           str(n_pairs), where], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"determinism worker failed: {tail}")
    return Path(done.stdout.strip().splitlines()[-1]) / "records.jsonl"


def run_determinism_stage(run_root: Path, raw: dict[str, Any], *, n_pairs: int,
                          stochastic_methods: tuple[str, ...], threads: int,
                          where: str) -> None:
    """Re-run the first ``n_pairs`` pairs in two fresh processes and record the outcome."""
    main_lines = (run_root / "records.jsonl").read_text(encoding="utf-8").splitlines()
    n_methods = len(raw["methods"])
    expected = main_lines[:n_pairs * n_methods]
    permuted = dict(raw, methods=list(reversed(raw["methods"])),
                    execution=dict(raw["execution"], pairs_per_batch=1))
    reseeded = dict(raw, protocol=dict(raw["protocol"], seed=raw["protocol"]["seed"] + 1))
    with tempfile.TemporaryDirectory(prefix="faceattr-determinism-") as tmp:
        a = _worker(permuted, Path(tmp) / "a", n_pairs, threads, where).read_text().splitlines()
        b = _worker(reseeded, Path(tmp) / "b", n_pairs, threads, where).read_text().splitlines()
    first = next((f"line {i + 1}" for i, (x, y) in enumerate(zip(expected, a, strict=False))
                  if x != y), None)
    if first is None and len(a) != len(expected):
        first = f"{len(a)} lines vs {len(expected)}"

    def stochastic(lines: list[str]) -> list[str]:
        return [line for line in lines if json.loads(line)["method"] in stochastic_methods]

    result = DeterminismResult(
        n_pairs=n_pairs, n_lines_compared=len(expected),
        identical_across_processes=first is None, first_difference=first,
        stochastic_methods=stochastic_methods,
        seed_changes_stochastic=bool(stochastic_methods)
        and stochastic(expected) != stochastic(b))
    write_json(run_root / "determinism.json", result.to_json())
