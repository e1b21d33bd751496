"""(e) How the engine's time grows with ``n_pairs`` and ``K``: linear fits and their R^2.

Every grid point ``(n_pairs, K)`` is one case of one interleaved timing (so all points see the
same machine load); each is :func:`faceattr.falsification.falsify_maps` on its own workload.
The engine's work is ``2 K n_pairs`` forwards plus per-pair and per-draw bookkeeping, so three
fits are reported: time against the number of counterfactual images over the whole grid,
time against ``n_pairs`` at the largest ``K``, and time against ``K`` at the largest
``n_pairs``. An R^2 near 1 with a small intercept means no hidden super-linear cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faceattr.bench.common import CaseTimes, Workload, finite, interleaved, make_workload, seq
from faceattr.falsification import falsify_maps
from faceattr.models.base import VerificationModel

__all__ = ["bench_scaling", "linear_fit"]


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares ``y = intercept + slope x`` and its coefficient of determination.

    Returns
    -------
    dict
        ``slope``, ``intercept`` and ``r2`` (1.0 when ``y`` is constant and fitted exactly).
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size < 2 or np.ptp(xs) == 0:
        raise ValueError("a linear fit needs at least two distinct x values")
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = float(np.sum((ys - (intercept + slope * xs)) ** 2))
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return {"slope": finite(float(slope)), "intercept": finite(float(intercept)),
            "r2": finite(r2)}


def _runner(workload: Workload) -> Callable[[], object]:
    def run() -> object:
        return falsify_maps(workload.model, workload.inputs, workload.maps,
                            method_id=workload.method_id, seed=workload.seed,
                            settings=workload.settings)
    return run


def bench_scaling(model: VerificationModel, *, n_pairs_grid: Sequence[int],
                  k_grid: Sequence[int], forward_chunk: int, repeats: int) -> dict[str, Any]:
    """Time the engine over the grid ``n_pairs_grid x k_grid`` and fit linear models.

    Parameters
    ----------
    model : VerificationModel
    n_pairs_grid, k_grid : sequence of int
        At least two distinct values each.
    forward_chunk : int
        Rows per forward; grid points whose ``2 K n_pairs`` is not a multiple of it pay for
        padded rows (reported per point).
    repeats : int
        Interleaved timed repetitions (one untimed warm-up round first).
    """
    workloads = {(n, k): make_workload(model, n_pairs=n, k=k, forward_chunk=forward_chunk,
                                       tag=f"scaling-k{k}")
                 for n in n_pairs_grid for k in k_grid}
    cases = {f"n{n}_k{k}": _runner(w) for (n, k), w in workloads.items()}
    times: dict[str, CaseTimes] = interleaved(cases, repeats=repeats,
                                              desc=f"scaling {model.name}")
    points: list[dict[str, Any]] = []
    for (n, k), workload in workloads.items():
        images = workload.n_counterfactuals
        points.append({"n_pairs": n, "k_per_region": k, "n_counterfactual_images": images,
                       "padded_rows": -images % forward_chunk,
                       "median_s": times[f"n{n}_k{k}"].median_s,
                       "times": times[f"n{n}_k{k}"].to_json()})
    n_max, k_max = max(n_pairs_grid), max(k_grid)
    at_k = [p for p in points if p["k_per_region"] == k_max]
    at_n = [p for p in points if p["n_pairs"] == n_max]
    return {
        "model": model.name, "input_size_px": model.input_size_px,
        "forward_chunk": forward_chunk, "repeats": repeats,
        "n_pairs_grid": seq(n_pairs_grid), "k_grid": seq(k_grid), "points": points,
        "fit_time_vs_images": linear_fit([p["n_counterfactual_images"] for p in points],
                                         [p["median_s"] for p in points]),
        "fit_time_vs_n_pairs_at_max_k": linear_fit([p["n_pairs"] for p in at_k],
                                                   [p["median_s"] for p in at_k]),
        "fit_time_vs_k_at_max_n_pairs": linear_fit([p["k_per_region"] for p in at_n],
                                                   [p["median_s"] for p in at_n]),
    }
