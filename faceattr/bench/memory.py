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

import ast
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MEMORY_TARGET_GB", "default_protocols", "peak_rss_of", "reduced_protocol_text",
           "validation_peak_rss"]

MEMORY_TARGET_GB: float = 3.0
"""(d): peak RSS of the default validation, GB (10^9 bytes)."""

_WRAPPER = """
import json, resource, subprocess, sys
completed = subprocess.run(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump({"returncode": completed.returncode, "ru_maxrss_kib": usage.ru_maxrss}, handle)
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
    with tempfile.TemporaryDirectory(prefix="faceattr-rss-") as tmp:
        report_path = Path(tmp) / "rss.json"
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-c", _WRAPPER, str(report_path), *command],
                                   cwd=cwd, env=env, capture_output=True, text=True,
                                   check=False)
        wall = time.perf_counter() - start
        if completed.returncode != 0 or not report_path.is_file():
            raise RuntimeError(f"memory wrapper failed (exit {completed.returncode}): "
                               f"{completed.stderr.strip()[-2000:]}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
    peak = int(report["ru_maxrss_kib"]) * 1024  # Linux reports KiB
    tail = "\n".join(completed.stdout.strip().splitlines()[-5:]
                     + completed.stderr.strip().splitlines()[-3:])
    return {"peak_rss_bytes": peak, "peak_rss_gb": peak / 1e9,
            "returncode": int(report["returncode"]), "wall_s": wall, "output_tail": tail}


def reduced_protocol_text(shipped: str, *, n_pairs: int, k_per_region: int) -> str:
    """The protocol with ``[data] n_pairs`` and ``[falsification] k_per_region`` replaced.

    Only those two keys of those two tables change; a protocol whose ``[data]`` has no
    ``n_pairs`` (a fixed photo set) keeps its pairs. Raises ``ValueError`` when neither key
    is present.
    """
    table = ""
    replaced = 0
    lines = []
    for line in shipped.splitlines(keepends=True):
        header = re.match(r"^\s*\[([^\[\]]+)\]", line)
        if header:
            table = header.group(1).strip()
        elif table == "data" and re.match(r"^n_pairs\s*=", line):
            line, replaced = f"n_pairs = {n_pairs}\n", replaced + 1
        elif table == "falsification" and re.match(r"^k_per_region\s*=", line):
            line, replaced = f"k_per_region = {k_per_region}\n", replaced + 1
        lines.append(line)
    if replaced == 0:
        raise ValueError("protocol text has no [data] n_pairs or [falsification] k_per_region "
                         "to reduce")
    return "".join(lines)


def default_protocols(root: Path) -> list[Path]:
    """The protocols ``pytest validation`` runs by default (``DEFAULT_PROTOCOLS`` in its
    ``conftest.py``, read without importing it)."""
    conftest = root / "validation" / "conftest.py"
    for node in ast.parse(conftest.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "DEFAULT_PROTOCOLS"):
            names = ast.literal_eval(node.value)
            return [root / "validation" / "protocols" / str(name) for name in names]
    raise ValueError(f"{conftest}: no DEFAULT_PROTOCOLS tuple")


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
    if not (root / "validation" / "conftest.py").is_file():
        return {"skipped": f"{root / 'validation'} not found (not a source checkout)"}
    protocols = default_protocols(root)
    with tempfile.TemporaryDirectory(prefix="faceattr-bench-mem-") as tmp:
        command = [sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider",
                   "--reports-dir", str(Path(tmp) / "reports"), "--threads", str(threads)]
        protocol_desc = "default: " + ", ".join(p.name for p in protocols) + " (shipped)"
        if quick:
            descs = []
            for shipped in protocols:
                text = shipped.read_text(encoding="utf-8")
                try:
                    reduced_text = reduced_protocol_text(text, n_pairs=n_pairs_quick,
                                                         k_per_region=k_quick)
                except ValueError:
                    reduced_text = text
                descs.append(f"{shipped.name} (shipped)" if reduced_text == text else
                             f"{shipped.name} with [data] n_pairs = {n_pairs_quick}")
                text = reduced_text
                reduced = Path(tmp) / shipped.name
                reduced.write_text(text, encoding="utf-8")
                command += ["--protocol", str(reduced)]
            protocol_desc = "; ".join(descs)
        result = peak_rss_of(command, cwd=root)
    result.update({"protocol": protocol_desc, "quick": quick, "threads": threads,
                   "target_gb": MEMORY_TARGET_GB,
                   "target_met": result["peak_rss_gb"] <= MEMORY_TARGET_GB})
    return result
