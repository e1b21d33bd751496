"""How many counterfactuals per region: the Hoeffding bound for drifts bounded in [0, pi].

One tested implementation (PITFALLS.md #19): the mean of K i.i.d. drifts in [0, pi] is
within ``eps`` of its expectation with probability at least ``1 - delta`` when
``K >= pi^2 ln(2 / delta) / (2 eps^2)`` (Hoeffding 1963, Theorem 2, range ``b - a = pi``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["KPlan", "hoeffding_k", "plan_k"]


def hoeffding_k(*, eps_rad: float, delta: float) -> int:
    """Smallest K with ``2 exp(-2 K eps^2 / pi^2) <= delta``.

    Parameters
    ----------
    eps_rad : float
        Precision of the mean drift, radians, > 0.
    delta : float
        Failure probability, in (0, 1).

    References
    ----------
    W. Hoeffding, "Probability inequalities for sums of bounded random variables",
    JASA 58, 1963.
    """
    if not (math.isfinite(eps_rad) and eps_rad > 0):
        raise ValueError(f"eps_rad must be > 0, got {eps_rad!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    return math.ceil(math.pi ** 2 * math.log(2 / delta) / (2 * eps_rad ** 2))


@dataclass(frozen=True, slots=True)
class KPlan:
    """Whether a run's K meets its declared precision."""

    k_per_region: int
    eps_rad: float
    delta: float
    required_k: int
    sufficient: bool


def plan_k(k_per_region: int, *, eps_rad: float, delta: float) -> KPlan:
    """Compare K with the Hoeffding requirement."""
    required = hoeffding_k(eps_rad=eps_rad, delta=delta)
    return KPlan(k_per_region=k_per_region, eps_rad=eps_rad, delta=delta, required_k=required,
                 sufficient=k_per_region >= required)
