"""K sufficiency: the run's K meets the Hoeffding requirement of its declared precision
(PITFALLS.md #19; :func:`faceattr.falsification.planning.hoeffding_k`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader
from faceattr.falsification.planning import plan_k

__all__ = ["KParams", "check_k_sufficiency", "read_k"]


@dataclass(frozen=True, slots=True)
class KParams:
    """The precision the mean drift must reach: within ``eps_rad`` w.p. ``1 - delta``."""

    eps_rad: float
    delta: float


def read_k(reader: TableReader, method_ids: set[str]) -> KParams:
    """Parse ``eps_rad`` and ``delta``."""
    del method_ids
    params = KParams(eps_rad=reader.number("eps_rad", minimum=1e-6, maximum=math.pi),
                     delta=reader.fraction("delta", open_low=True, maximum=0.5))
    reader.finish()
    return params


def check_k_sufficiency(claim_id: str, params: KParams, run: RunArtefacts) -> ClaimResult:
    """Every valid record has K >= the Hoeffding bound ``pi^2 ln(2/delta) / (2 eps^2)``."""
    ks = {len(r.drift_high_rad) for r in run.records if r.status == "valid"}
    if not ks:
        raise ValueError("no valid record: K cannot be read")
    k = min(ks)
    plan = plan_k(k, eps_rad=params.eps_rad, delta=params.delta)
    return ClaimResult(
        claim_id=claim_id, kind="k_sufficiency", family="k_sufficiency",
        statement=f"K per region >= {plan.required_k} (mean drift within {params.eps_rad:g} "
                  f"rad with probability >= {1 - params.delta:g}, Hoeffding 1963)",
        passed=plan.sufficient, statistic="K per region", observed=float(k), comparison=">=",
        threshold=float(plan.required_k), n=len(run.records), interval_low=None,
        interval_high=None, interval_method=None,
        alpha=next(iter(run.summary.methods.values())).fr_itt.alpha,
        detail=f"K = {k}; Hoeffding requires {plan.required_k}")
