"""IG completeness: the attributions of an IG-family method add up to the target's change.

``|sum(phi) - (F(x) - F(baseline))| <= rtol * |F(x) - F(baseline)| + atol`` must hold for at
least ``min_share`` of the valid pairs (Sundararajan et al., "Axiomatic attribution for deep
networks", ICML 2017, the completeness axiom). The target change is recovered from the
record as ``attribution_sum - convergence_delta``.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader
from faceattr.stats.proportions import proportion_interval

__all__ = ["CompletenessParams", "check_completeness", "read_completeness"]


@dataclass(frozen=True, slots=True)
class CompletenessParams:
    """Tolerances and the share of pairs that must meet them."""

    method: str
    rtol: float
    atol: float
    min_share: float


def read_completeness(reader: TableReader, method_ids: set[str]) -> CompletenessParams:
    """Parse ``method``, ``rtol``, ``atol`` and ``min_share``."""
    params = CompletenessParams(method=reader.text("method", allowed=sorted(method_ids)),
                                rtol=reader.number("rtol", minimum=0.0, maximum=10.0),
                                atol=reader.number("atol", minimum=0.0, maximum=10.0),
                                min_share=reader.fraction("min_share"))
    reader.finish()
    return params


def check_completeness(claim_id: str, params: CompletenessParams,
                       run: RunArtefacts) -> ClaimResult:
    """Judge completeness on the valid pairs' recorded residuals."""
    rows = [r for r in run.records_of(params.method) if r.status == "valid"]
    residuals = [(r.convergence_delta, r.attribution_sum) for r in rows
                 if r.convergence_delta is not None and r.attribution_sum is not None]
    if not rows or len(residuals) != len(rows):
        raise ValueError(f"{params.method} records carry no completeness delta (is it an "
                         "IG-family method?)")
    ok = 0
    worst = 0.0
    for delta, total in residuals:
        change = total - delta
        ok += abs(delta) <= params.rtol * abs(change) + params.atol
        worst = max(worst, abs(delta))
    alpha = run.method(params.method).fr_itt.alpha
    share = proportion_interval(ok, len(rows), method="wilson", alpha=alpha)
    return ClaimResult(
        claim_id=claim_id, kind="completeness", family="completeness",
        statement=f"{params.method}: |sum(phi) - (F(x) - F(b))| <= {params.rtol:g} |F(x) - "
                  f"F(b)| + {params.atol:g} on >= {params.min_share:g} of the pairs",
        passed=share.estimate >= params.min_share, statistic="share of complete pairs",
        observed=share.estimate, comparison=">=", threshold=params.min_share, n=share.n,
        interval_low=share.low, interval_high=share.high, interval_method="wilson",
        alpha=alpha, detail=f"{ok}/{len(rows)} pairs within tolerance; largest |residual| "
                            f"{worst:.3g}")
