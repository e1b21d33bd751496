"""Completeness trend: how an IG-family method's residual shrinks with ``n_steps``.

For every method with a completeness delta (``info.has_convergence_delta``) that takes an
``n_steps`` parameter, the first pairs are re-attributed at each declared ``n_steps`` and the
residual ``|sum(phi) - (F(x) - F(b))|`` is summarised (Sundararajan et al. 2017: the
Riemann-sum error falls as the number of steps grows). Written to ``completeness_trend.json``
for the report.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceattr.attribution import METHODS, AttributionBatch, AttributionMethod, build_method
from faceattr.config import ProtocolError
from faceattr.io import write_json
from faceattr.protocol import MethodSpec

__all__ = ["completeness_trend"]


def _residuals(method: AttributionMethod, batch: AttributionBatch) -> list[float]:
    details = method.attribute_with_details(batch)
    if details.convergence_delta is None:
        raise ValueError(f"{method.method_id} returned no convergence delta")
    return [abs(float(d)) for d in np.asarray(details.convergence_delta)]


def completeness_trend(run_root: Path, specs: Sequence[MethodSpec], batch: AttributionBatch,
                       *, n_steps_grid: Sequence[int], where: str) -> dict[str, Any]:
    """Residual summaries per method and ``n_steps``; written to ``completeness_trend.json``."""
    trend: dict[str, Any] = {"n_pairs": int(batch.probes.shape[0]),
                             "n_steps": list(n_steps_grid), "methods": {}}
    for spec in specs:
        if not METHODS[spec.method].info.has_convergence_delta:
            continue
        try:  # path methods take n_steps; DeepLIFT and LRP have a delta but no steps
            variants = [build_method(spec.id, spec.method, spec.params_dict() | {"n_steps": n},
                                     where) for n in n_steps_grid]
        except ProtocolError:
            continue
        rows = []
        for n_steps, method in zip(n_steps_grid, variants, strict=True):
            residuals = _residuals(method, batch)
            rows.append({"n_steps": n_steps, "mean_abs_residual": statistics.fmean(residuals),
                         "max_abs_residual": max(residuals)})
        trend["methods"][spec.id] = rows
    write_json(run_root / "completeness_trend.json", trend)
    return trend
