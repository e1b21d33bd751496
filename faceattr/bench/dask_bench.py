"""The Dask executor vs the serial loop on the same run: speed-up, byte equality, memory.

``python -m faceattr.bench --only dask [--dask-workers 2] [--quick]`` runs one synthetic
protocol three times into separate report folders: serially in this process, then twice on a
``distributed.LocalCluster`` of single-threaded worker processes (``cold``: each worker builds
the pair source and the model on its first task; ``warm``: the workers' cached contexts
reused). Reported: ``speedup_cold`` / ``speedup_warm`` (serial wall time over Dask wall time,
the cluster's start-up excluded), whether ``records.jsonl``, ``summary.json`` and
``manifest.json`` are byte-identical to the serial run's, and each worker's resident memory
after the runs. On ``n`` idle cores the ceiling is ``n`` (minus the driver's own share: it
embeds every clean image for the model gate and writes the records).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from faceattr.bench.common import finite

__all__ = ["BENCH_PROTOCOL", "bench_dask"]

ARTEFACTS = ("records.jsonl", "summary.json", "manifest.json")

BENCH_PROTOCOL = """
[protocol]
name = "dask-bench"
description = "Serial vs Dask on one synthetic run (faceattr.bench.dask_bench)."
seed = 20261111
alpha = 0.05
interval_method = "wilson"

[data]
source = "synthetic"
world_seed = 0
n_pairs = {n_pairs}
genuine_fraction = 0.5
first_identity = 1000

[model]
name = "synthetic_cnn"
min_auc = 0.5

[falsification]
regions = "quantile"
q_frac = 0.10
k_per_region = {k}
fill = "mean"
perturbation_sigma = 0.02
verdict = "simple"
distance = "geodesic"
tau_high = 0.5
tau_low = 0.3
epsilon = 0.1
test_alpha = 0.05

[execution]
pairs_per_batch = {pairs_per_batch}
forward_chunk = 64

[[methods]]
method = "saliency"

[[methods]]
method = "integrated_gradients"

[[methods]]
method = "oracle"

[[methods]]
method = "random"
"""


def _timed_run(protocol_path: Path, reports: Path, executor: Any) -> tuple[Path, float]:
    from faceattr.experiments.run import run_protocol
    from faceattr.protocol import load_protocol

    started = time.perf_counter()
    folder = run_protocol(load_protocol(protocol_path), reports, progress=False,
                          executor=executor)
    return folder.root, time.perf_counter() - started


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def bench_dask(*, n_workers: int = 2, n_pairs: int = 24, k: int = 16,
               pairs_per_batch: int = 4) -> dict[str, Any]:
    """Serial vs Dask on one run (see the module docstring).

    Returns
    -------
    dict
        Wall times, the speed-ups, byte equality per artefact, per-worker RSS (bytes).
    """
    from distributed import Client, LocalCluster

    from faceattr.experiments.executor import DaskExecutor, SerialExecutor

    with tempfile.TemporaryDirectory(prefix="faceattr-dask-bench-") as tmp:
        root = Path(tmp)
        path = root / "dask_bench.toml"
        path.write_text(BENCH_PROTOCOL.format(n_pairs=n_pairs, k=k,
                                              pairs_per_batch=pairs_per_batch),
                        encoding="utf-8")
        serial, serial_s = _timed_run(path, root / "serial", SerialExecutor())
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            executor = DaskExecutor(client=client)
            cold, cold_s = _timed_run(path, root / "cold", executor)
            warm, warm_s = _timed_run(path, root / "warm", executor)
            rss = client.run(_rss_bytes)
        identical = {name: (serial / name).read_bytes() == (cold / name).read_bytes()
                     == (warm / name).read_bytes() for name in ARTEFACTS}
    return {"n_workers": n_workers, "cpu_count": os.cpu_count(), "n_pairs": n_pairs,
            "k_per_region": k, "pairs_per_batch": pairs_per_batch,
            "serial_s": serial_s, "dask_cold_s": cold_s, "dask_warm_s": warm_s,
            "speedup_cold": finite(serial_s / cold_s), "speedup_warm": finite(serial_s / warm_s),
            "byte_identical": identical, "all_identical": all(identical.values()),
            "driver_rss_bytes": _rss_bytes(),
            "worker_rss_bytes": sorted(int(v) for v in rss.values())}


def markdown(result: dict[str, Any]) -> str:
    """A short table of the Dask benchmark."""
    rss = ", ".join(f"{v / 2**20:.0f}" for v in result["worker_rss_bytes"])
    return "\n".join([
        f"Dask executor, {result['n_workers']} local workers x 1 thread on "
        f"{result['cpu_count']} cores; {result['n_pairs']} pairs, K = {result['k_per_region']}, "
        f"{result['pairs_per_batch']} pairs per batch, 4 methods",
        "",
        "| serial s | dask cold s | dask warm s | speed-up cold | speed-up warm "
        "| records/summary/manifest identical | RSS per worker MiB |",
        "|---|---|---|---|---|---|---|",
        f"| {result['serial_s']:.1f} | {result['dask_cold_s']:.1f} | {result['dask_warm_s']:.1f} "
        f"| {result['speedup_cold']:.2f}x | {result['speedup_warm']:.2f}x "
        f"| {'yes' if result['all_identical'] else 'NO: ' + str(result['byte_identical'])} "
        f"| {rss} |"])
