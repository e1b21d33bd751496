"""Equivalence (TOST) for two proportions: the only way to claim "no difference".

Non-significance of a difference test is never read as equivalence (PITFALLS #11). The margin
is declared up front; equivalence holds when both one-sided tests reject at ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats as _sps

from faceattr.stats.paired import _newcombe_paired, paired_table
from faceattr.stats.proportions import check_alpha, check_count_n
from faceattr.stats.records import PairedTable, check_finite, check_probability
from faceattr.stats.unpaired import (
    _disjoint_counts,
    farrington_manning_z,
    newcombe_unpaired_interval,
)

__all__ = [
    "EquivalenceResult",
    "check_margin",
    "tango_score_z",
    "tost_paired",
    "tost_unpaired",
    "tost_unpaired_counts",
]


def check_margin(margin: float) -> float:
    """A declared equivalence margin on the risk difference, ``0 < margin < 1``."""
    m = check_finite("margin", margin)
    if not 0.0 < m < 1.0:
        raise ValueError(f"margin must satisfy 0 < margin < 1 (a fraction), got {margin!r}")
    return m


@dataclass(frozen=True, slots=True)
class EquivalenceResult:
    """TOST of ``|rate_a - rate_b| < margin``.

    Attributes
    ----------
    estimate : float
        ``rate_a - rate_b``.
    low, high : float
        The ``1 - 2 alpha`` interval for the difference (Newcombe hybrid score), reported
        alongside the tests.
    margin : float
        Declared margin; the hypotheses are H0: diff <= -margin or diff >= margin.
    p_lower : float
        p-value of H0: diff <= -margin vs diff > -margin.
    p_upper : float
        p-value of H0: diff >= margin vs diff < margin.
    p_value : float
        ``max(p_lower, p_upper)``.
    equivalent : bool
        ``p_value <= alpha``.
    """

    estimate: float
    low: float
    high: float
    margin: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool
    rate_a: float
    rate_b: float
    n_a: int
    n_b: int
    paired: bool
    method: str
    alpha: float

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_margin(self.margin)
        for name in ("estimate", "low", "high"):
            v = check_finite(name, getattr(self, name))
            if not -1.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [-1, 1], got {v!r}")
        for name in ("p_lower", "p_upper", "p_value", "rate_a", "rate_b"):
            check_probability(name, getattr(self, name))
        if self.p_value != max(self.p_lower, self.p_upper):
            raise ValueError("p_value must be max(p_lower, p_upper)")
        if self.equivalent != (self.p_value <= self.alpha):
            raise ValueError("equivalent must equal p_value <= alpha")
        if not self.low <= self.estimate <= self.high:
            raise ValueError("interval must contain its estimate")

    def to_json(self) -> dict[str, float | int | str | bool]:
        """A JSON-safe dict."""
        return {
            "estimate": self.estimate, "low": self.low, "high": self.high,
            "margin": self.margin, "p_lower": self.p_lower, "p_upper": self.p_upper,
            "p_value": self.p_value, "equivalent": self.equivalent, "rate_a": self.rate_a,
            "rate_b": self.rate_b, "n_a": self.n_a, "n_b": self.n_b, "paired": self.paired,
            "method": self.method, "alpha": self.alpha,
        }


def tost_unpaired_counts(
    count_a: int, n_a: int, count_b: int, n_b: int, *, margin: float, alpha: float
) -> EquivalenceResult:
    """TOST for two independent proportions with a declared symmetric margin.

    Two one-sided Farrington-Manning score tests (restricted MLE in closed form, no
    ``n/(n-1)`` correction): ``p_lower = 1 - Phi(z(-margin))``, ``p_upper = Phi(z(margin))``.
    Not delegated to ``statsmodels`` ``tost_proportions_2indep(method="score")``: in
    statsmodels 0.15.0 its restricted-MLE cubic has a wrong linear coefficient for
    ``compare="diff"``, ``value != 0`` (statsmodels issue #10269, fix proposed in PR #10270),
    and it emits 0/0 warnings at rates of 0 or 1.

    References
    ----------
    .. [1] D. J. Schuirmann, "A comparison of the two one-sided tests procedure and the power
       approach for assessing the equivalence of average bioavailability", J. Pharmacokinet.
       Biopharm. 15(6):657-680, 1987.
    .. [2] C. P. Farrington and G. Manning, "Test statistics and sample size formulae for
       comparative binomial trials with null hypothesis of non-zero risk difference or
       non-unity relative risk", Statistics in Medicine 9(12):1447-1454, 1990.
    """
    ca, na = check_count_n(count_a, n_a)
    cb, nb = check_count_n(count_b, n_b)
    a_ = check_alpha(alpha)
    m = check_margin(margin)
    z_low = farrington_manning_z(ca, na, cb, nb, delta0=-m)
    z_up = farrington_manning_z(ca, na, cb, nb, delta0=m)
    if z_low is None or z_up is None:  # restricted variance is > 0 for 0 < margin < 1
        raise ArithmeticError(f"zero restricted variance on {ca}/{na} vs {cb}/{nb}")
    p_lower = float(_sps.norm.sf(z_low))
    p_upper = float(_sps.norm.cdf(z_up))
    ci = newcombe_unpaired_interval(ca, na, cb, nb, alpha=2 * a_) if a_ < 0.5 else None
    if ci is None:
        raise ValueError(f"alpha must be < 0.5 for a 1 - 2 alpha interval, got {alpha!r}")
    p = max(p_lower, p_upper)
    return EquivalenceResult(
        estimate=ci.estimate, low=ci.low, high=ci.high, margin=m, p_lower=p_lower,
        p_upper=p_upper, p_value=p, equivalent=p <= a_, rate_a=ci.rate_a, rate_b=ci.rate_b,
        n_a=na, n_b=nb, paired=False, method="tost-score-2indep", alpha=a_,
    )


def tost_unpaired(
    a: Mapping[str, bool], b: Mapping[str, bool], *, margin: float, alpha: float
) -> EquivalenceResult:
    """:func:`tost_unpaired_counts` from per-pair verdicts of two runs sharing no pairs."""
    ca, na, cb, nb = _disjoint_counts(a, b)
    return tost_unpaired_counts(ca, na, cb, nb, margin=margin, alpha=alpha)


def tango_score_z(table: PairedTable, *, delta0: float) -> float:
    """Tango's score statistic for H0: ``rate_a - rate_b = delta0`` on paired data.

    ``z = (b - c - n delta0) / sqrt(n (2 q + delta0 (1 - delta0)))`` where ``b = n_a_only``,
    ``c = n_b_only`` and ``q`` is the constrained MLE of the ``b_only`` cell probability,
    ``q = (sqrt(B^2 - 8 n C) - B) / (4 n)`` with ``B = -b - c + (2n - b + c) delta0`` and
    ``C = -c delta0 (1 - delta0)``. At ``delta0 = 0`` it is McNemar's ``(b - c)/sqrt(b + c)``.

    References
    ----------
    .. [1] T. Tango, "Equivalence test and confidence interval for the difference in
       proportions for the paired-sample design", Statistics in Medicine 17(8):891-908, 1998.
    """
    d0 = check_finite("delta0", delta0)
    if not -1.0 < d0 < 1.0:
        raise ValueError(f"delta0 must lie in (-1, 1), got {delta0!r}")
    n, b, c = table.n, table.n_a_only, table.n_b_only
    bb = -b - c + (2 * n - b + c) * d0
    cc = -c * d0 * (1.0 - d0)
    q = (math.sqrt(max(bb * bb - 8.0 * n * cc, 0.0)) - bb) / (4.0 * n)
    var = n * (2.0 * q + d0 * (1.0 - d0))
    if var <= 0.0:
        if b - c - n * d0 == 0:
            return 0.0
        raise ArithmeticError(f"zero variance at delta0={d0} with a non-zero numerator")
    return (b - c - n * d0) / math.sqrt(var)


def tost_paired(
    a: Mapping[str, bool], b: Mapping[str, bool], *, margin: float, alpha: float
) -> EquivalenceResult:
    """TOST for two proportions on the same pairs (joined on pair_id), declared margin.

    Two one-sided Tango score tests: ``p_lower = 1 - Phi(z(-margin))``,
    ``p_upper = Phi(z(+margin))``. The reported interval is Newcombe's paired hybrid score
    interval at ``1 - 2 alpha``.

    References
    ----------
    .. [1] D. J. Schuirmann, J. Pharmacokinet. Biopharm. 15(6):657-680, 1987.
    .. [2] T. Tango, Statistics in Medicine 17(8):891-908, 1998.
    .. [3] R. G. Newcombe, Statistics in Medicine 17(22):2635-2650, 1998.
    """
    a_ = check_alpha(alpha)
    if a_ >= 0.5:
        raise ValueError(f"alpha must be < 0.5 for a 1 - 2 alpha interval, got {alpha!r}")
    m = check_margin(margin)
    t = paired_table(a, b)
    p_lower = float(_sps.norm.sf(tango_score_z(t, delta0=-m)))
    p_upper = float(_sps.norm.cdf(tango_score_z(t, delta0=m)))
    low, high = _newcombe_paired(t, 2 * a_)
    est = t.rate_a - t.rate_b
    p = max(p_lower, p_upper)
    return EquivalenceResult(
        estimate=est, low=min(low, est), high=max(high, est), margin=m, p_lower=p_lower,
        p_upper=p_upper, p_value=p, equivalent=p <= a_, rate_a=t.rate_a, rate_b=t.rate_b,
        n_a=t.n, n_b=t.n, paired=True, method="tost-tango-score-paired", alpha=a_,
    )
