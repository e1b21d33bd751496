"""Pairs needed to show equivalence of two paired falsification rates (paired TOST).

When ``faceattr compare`` can show neither equivalence nor a difference the answer is
"inconclusive", with the number of shared pairs a new comparison would need. The test planned
for is the one run: two one-sided Tango (1998) score tests at ``+-margin`` on the paired table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy import stats as _sps

from faceattr.stats.records import PairedTable

__all__ = [
    "EquivalencePlan",
    "pairs_needed_tost_paired",
    "plan_equivalence",
    "tost_paired_power",
]

_N_MAX = 100_000_000


def _restricted_variance(p10: float, p01: float, delta0: float) -> float:
    """Per-pair null variance of Tango's score at ``delta0``, with the cell rates as data.

    The constrained MLE of :func:`faceattr.stats.equivalence.tango_score_z` with ``b = n p10``,
    ``c = n p01``: ``n`` cancels, so ``var = 2 q + delta0 (1 - delta0)`` is a per-pair figure.
    """
    bb = -p10 - p01 + (2.0 - p10 + p01) * delta0
    cc = -p01 * delta0 * (1.0 - delta0)
    q = (math.sqrt(max(bb * bb - 8.0 * cc, 0.0)) - bb) / 4.0
    return 2.0 * q + delta0 * (1.0 - delta0)


def tost_paired_power(rate_a_only: float, rate_b_only: float, *, n: int, margin: float,
                      alpha: float) -> float:
    """Power of the paired TOST (Tango score tests at ``+-margin``) at ``n`` pairs.

    Normal approximation: with ``theta = p10 - p01`` and ``psi = p10 + p01``, ``X = b - c`` is
    about ``N(n theta, n (psi - theta^2))``; the TOST rejects when
    ``-n m + z sqrt(n) s_- <= X <= n m - z sqrt(n) s_+`` (``z = z_{1-alpha}``, ``s_+-`` the
    square roots of the score's null variances at ``+-m``). With ``psi = theta^2`` (no
    variation) ``X`` is exactly ``n theta``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    p10, p01 = float(rate_a_only), float(rate_b_only)
    if not (0.0 <= p10 <= 1.0 and 0.0 <= p01 <= 1.0 and p10 + p01 <= 1.0):
        raise ValueError(f"discordant rates must be in [0, 1] with sum <= 1, got {p10}, {p01}")
    if not 0.0 < margin < 1.0 or not 0.0 < alpha < 0.5:
        raise ValueError(f"need 0 < margin < 1 and 0 < alpha < 0.5, got {margin}, {alpha}")
    theta, psi = p10 - p01, p10 + p01
    z = float(_sps.norm.ppf(1.0 - alpha))
    root_n = math.sqrt(n)
    upper = n * margin - z * root_n * math.sqrt(_restricted_variance(p10, p01, margin))
    lower = -n * margin + z * root_n * math.sqrt(_restricted_variance(p10, p01, -margin))
    if upper < lower:
        return 0.0
    sd = root_n * math.sqrt(max(psi - theta * theta, 0.0))
    mean = n * theta
    if sd == 0.0:
        return 1.0 if lower <= mean <= upper else 0.0
    return max(0.0, float(_sps.norm.cdf((upper - mean) / sd) - _sps.norm.cdf((lower - mean) / sd)))


def pairs_needed_tost_paired(rate_a_only: float, rate_b_only: float, *, margin: float,
                             alpha: float, power: float) -> int | None:
    """Smallest ``n`` at which :func:`tost_paired_power` reaches ``power``.

    ``None`` when no ``n`` does: the assumed difference ``|p10 - p01|`` is at or beyond the
    margin (equivalence is then false, not unproven), or more than 1e8 pairs would be needed.
    Found by doubling, then bisection (the power is increasing in ``n`` once it is positive).

    References
    ----------
    .. [1] T. Tango, "Equivalence test and confidence interval for the difference in
       proportions for the paired-sample design", Statistics in Medicine 17(8):891-908, 1998.
    .. [2] J. Liu, H. Hsueh, E. Hsieh, J. J. Chen, "Tests for equivalence or non-inferiority
       for paired binary data", Statistics in Medicine 21(2):231-245, 2002.
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power!r}")
    if abs(rate_a_only - rate_b_only) >= margin:
        return None

    def enough(n: int) -> bool:
        return tost_paired_power(rate_a_only, rate_b_only, n=n, margin=margin,
                                 alpha=alpha) >= power

    high = 2
    while not enough(high):
        if high >= _N_MAX:
            return None
        high *= 2
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return high


@dataclass(frozen=True, slots=True)
class EquivalencePlan:
    """How many shared pairs would show equivalence, under a stated planning assumption.

    Attributes
    ----------
    n_observed : int
        Pairs the inconclusive comparison tested.
    rate_b_only, rate_a_only : float
        Assumed shares of pairs falsified only in B / only in A (candidate, baseline).
    margin, alpha, power : float
    n_needed : int or None
        ``None`` when no sample size shows equivalence under the assumption.
    assumption : str
        The planning assumption, in words.
    """

    n_observed: int
    rate_b_only: float
    rate_a_only: float
    margin: float
    alpha: float
    power: float
    n_needed: int | None
    assumption: str

    def __post_init__(self) -> None:
        if self.n_observed < 1:
            raise ValueError("a plan needs at least one observed pair")
        if self.n_needed is not None and self.n_needed < 2:
            raise ValueError(f"n_needed must be >= 2, got {self.n_needed}")
        if not self.assumption or "\n" in self.assumption:
            raise ValueError("a plan needs a one-line assumption")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"n_observed": self.n_observed, "rate_b_only": self.rate_b_only,
                "rate_a_only": self.rate_a_only, "margin": self.margin, "alpha": self.alpha,
                "power": self.power, "n_needed": self.n_needed, "assumption": self.assumption,
                "test": "paired TOST, two one-sided Tango score tests (normal approximation)"}


def plan_equivalence(table: PairedTable, *, margin: float, alpha: float,
                     power: float = 0.8) -> EquivalencePlan:
    """Pairs needed for the paired TOST, planning on the observed discordance.

    Planning values: the observed shares of pairs falsified only in B (``table.n_a_only``, arm
    a = B) and only in A; when no pair is discordant, one discordant pair in the ``n``
    observed is assumed, half each way (``p10 = p01 = 1 / (2 n)``): zero observed discordance
    in a small sample does not show that the true discordance is zero.
    """
    n, b, c = table.n, table.n_a_only, table.n_b_only
    if b + c == 0:
        p10 = p01 = 0.5 / n
        assumption = (f"no discordant pair among {n}: at least one assumed (half each way, "
                      f"discordance 1/{n}), no true difference")
    else:
        p10, p01 = b / n, c / n
        assumption = (f"the observed discordance holds: {b}/{n} pairs falsified only in B, "
                      f"{c}/{n} only in A")
    needed = pairs_needed_tost_paired(p10, p01, margin=margin, alpha=alpha, power=power)
    return EquivalencePlan(n_observed=n, rate_b_only=p10, rate_a_only=p01, margin=margin,
                           alpha=alpha, power=power, n_needed=needed, assumption=assumption)
