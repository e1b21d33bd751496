"""(d) Peak resident memory of the default validation (``nox -s validate``).

The validation runs in a fresh Python wrapper process, which runs pytest as its own child and
reports ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` once pytest has exited: the peak RSS
of the largest descendant it waited for (pytest runs single-process). The wrapper is new, so
no earlier child of the benchmark process can inflate the figure.

``quick`` runs a reduced copy of the shipped protocol in a temporary folder: by default 25
pairs at the shipped ``k_per_region = 32``, i.e. exactly one of the shipped run's batches
(``pairs_per_batch = 25``), so the largest transient allocation — the batch's
``25 * 2 * 32`` counterfactual images and their embeddings — is the full run's. What the
full run adds is its records and summary (kilobytes per pair). The reduced run's claims may
fail (too few pairs for the intervals): its pytest exit code is recorded, not judged. The
full benchmark runs the shipped protocol itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MEMORY_TARGET_GB", "peak_rss_of", "reduced_protocol_text", "validation_peak_rss"]

MEMORY_TARGET_GB: float = 3.0
"""(d): peak RSS of the default validation, GB (10^9 bytes)."""

_WRAPPER = """
import json, resource, subprocess, sys
completed = subprocess.run(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": completed.returncode, "ru_maxrss_kib": usage.ru_maxrss}))
"""


def peak_rss_of(command: Sequence[str], *, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` under a fresh wrapper and return its peak RSS and exit code.

    Parameters
    ----------
    command : sequence of str
        The program and its arguments.
    cwd : pathlib.Path or None
        Working directory.
    env : dict or None
        Environment (``None`` inherits).

    Returns
    -------
    dict
        ``peak_rss_bytes``, ``peak_rss_gb``, ``returncode``, ``wall_s`` and the last lines of
        the command's output (``output_tail``).
    """
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", _WRAPPER, *command], cwd=cwd, env=env,
                               capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"memory wrapper failed (exit {completed.returncode}): "
                           f"{completed.stderr.strip()[-2000:]}")
    report = json.loads(lines[-1])
    peak = int(report["ru_maxrss_kib"]) * 1024  # Linux reports KiB
    tail = "\n".join(lines[:-1][-5:] + completed.stderr.strip().splitlines()[-3:])
    return {"peak_rss_bytes": peak, "peak_rss_gb": peak / 1e9,
            "returncode": int(report["returncode"]), "wall_s": wall, "output_tail": tail}


def reduced_protocol_text(shipped: str, *, n_pairs: int, k_per_region: int) -> str:
    """The shipped protocol with ``n_pairs`` and ``k_per_region`` replaced (all else kept)."""
    text, n_sub = re.subn(r"(?m)^n_pairs\s*=\s*\d+", f"n_pairs = {n_pairs}", shipped)
    text, k_sub = re.subn(r"(?m)^k_per_region\s*=\s*\d+", f"k_per_region = {k_per_region}",
                          text)
    if n_sub != 1 or k_sub != 1:
        raise ValueError("protocol text has no single n_pairs / k_per_region line to reduce")
    return text


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def validation_peak_rss(*, quick: bool, threads: int, n_pairs_quick: int = 25,
                        k_quick: int = 32) -> dict[str, Any]:
    """Peak RSS of ``pytest validation`` on the default protocol (reduced when ``quick``).

    Parameters
    ----------
    quick : bool
        Run a reduced copy of ``validation/protocols/synthetic.toml``.
    threads : int
        ``--threads`` passed to the validation (torch intra-op threads).
    n_pairs_quick, k_quick : int
        Size of the reduced protocol.

    Returns
    -------
    dict
        The measurement (see :func:`peak_rss_of`), the protocol used and the target; or
        ``{"skipped": reason}`` when the source tree's ``validation/`` folder is absent.
    """
    root = _repo_root()
    shipped = root / "validation" / "protocols" / "synthetic.toml"
    if not shipped.is_file():
        return {"skipped": f"{shipped} not found (not a source checkout)"}
    with tempfile.TemporaryDirectory(prefix="faceattr-bench-mem-") as tmp:
        command = [sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider",
                   "--reports-dir", str(Path(tmp) / "reports"), "--threads", str(threads)]
        protocol_desc = "validation/protocols/synthetic.toml (shipped)"
        if quick:
            reduced = Path(tmp) / "synthetic_reduced.toml"
            reduced.write_text(reduced_protocol_text(shipped.read_text(encoding="utf-8"),
                                                     n_pairs=n_pairs_quick,
                                                     k_per_region=k_quick), encoding="utf-8")
            command += ["--protocol", str(reduced)]
            protocol_desc = (f"synthetic.toml reduced to n_pairs={n_pairs_quick}, "
                             f"k_per_region={k_quick}")
        result = peak_rss_of(command, cwd=root)
    result.update({"protocol": protocol_desc, "quick": quick, "threads": threads,
                   "target_gb": MEMORY_TARGET_GB,
                   "target_met": result["peak_rss_gb"] <= MEMORY_TARGET_GB})
    return result
