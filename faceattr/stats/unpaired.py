"""Unpaired two-proportion comparison for runs that share no pairs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sps
from statsmodels.stats.proportion import confint_proportions_2indep

from faceattr.stats.effects import cohens_h
from faceattr.stats.proportions import check_alpha, check_count_n
from faceattr.stats.records import DifferenceInterval, TestResult, direction_of

__all__ = [
    "UnpairedComparison",
    "farrington_manning_z",
    "newcombe_unpaired_interval",
    "unpaired_comparison",
    "unpaired_comparison_counts",
]


@dataclass(frozen=True, slots=True)
class UnpairedComparison:
    """Risk difference of two independent proportions with its interval and a score test."""

    difference: DifferenceInterval
    test: TestResult

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {"difference": self.difference.to_json(), "test": self.test.to_json()}


def newcombe_unpaired_interval(
    count_a: int, n_a: int, count_b: int, n_b: int, *, alpha: float
) -> DifferenceInterval:
    """Newcombe's hybrid score interval (method 10) for ``count_a/n_a - count_b/n_b``.

    ``statsmodels.stats.proportion.confint_proportions_2indep`` with ``method="newcomb"`` and
    ``compare="diff"`` passed explicitly (its default "might change"). Defined for rates of
    0 or 1.

    References
    ----------
    .. [1] R. G. Newcombe, "Interval estimation for the difference between independent
       proportions: comparison of eleven methods", Statistics in Medicine 17(8):873-890, 1998.
    """
    ca, na = check_count_n(count_a, n_a)
    cb, nb = check_count_n(count_b, n_b)
    a_ = check_alpha(alpha)
    low, high = confint_proportions_2indep(
        ca, na, cb, nb, method="newcomb", compare="diff", alpha=a_, correction=False
    )
    ra, rb = ca / na, cb / nb
    est = ra - rb
    return DifferenceInterval(
        estimate=est, low=max(-1.0, min(float(low), est)), high=min(1.0, max(float(high), est)),
        rate_a=ra, rate_b=rb, n_a=na, n_b=nb, paired=False, cohens_h=cohens_h(ra, rb),
        method="newcombe-hybrid-score", alpha=a_,
    )


def _fm_restricted_mle(x1: int, n1: int, x2: int, n2: int, d0: float) -> tuple[float, float]:
    """Closed-form MLE of (p1, p2) under p1 - p2 = d0 (Farrington & Manning 1990, eq. 8-10)."""
    p1h, p2h = x1 / n1, x2 / n2
    th = n2 / n1
    a = 1.0 + th
    b = -(1.0 + th + p1h + th * p2h + d0 * (th + 2.0))
    c = d0 * d0 + d0 * (2.0 * p1h + th + 1.0) + p1h + th * p2h
    d = -p1h * d0 * (1.0 + d0)
    v = b**3 / (3.0 * a) ** 3 - b * c / (6.0 * a * a) + d / (2.0 * a)
    u2 = b * b / (3.0 * a) ** 2 - c / (3.0 * a)
    u = math.copysign(math.sqrt(max(u2, 0.0)), v)
    if u == 0.0:
        p1 = -b / (3.0 * a)
    else:
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3.0
        p1 = 2.0 * u * math.cos(w) - b / (3.0 * a)
    lo, hi = max(0.0, d0), min(1.0, 1.0 + d0)
    p1 = min(max(p1, lo), hi)
    return p1, min(max(p1 - d0, 0.0), 1.0)


def farrington_manning_z(
    count_a: int, n_a: int, count_b: int, n_b: int, *, delta0: float
) -> float | None:
    """Score statistic for H0: ``rate_a - rate_b = delta0`` (two independent samples).

    ``z = (p_a - p_b - delta0) / sqrt(q_a (1 - q_a) / n_a + q_b (1 - q_b) / n_b)`` with
    ``(q_a, q_b)`` the maximum-likelihood estimates under H0 (closed-form cubic root). No
    ``n / (n - 1)`` correction (Miettinen & Nurminen add it). At ``delta0 = 0`` it is the
    pooled z statistic. Returns ``None`` when the restricted variance is zero (possible only
    at ``delta0 = 0`` with both rates 0 or both 1).

    Implemented here rather than via ``statsmodels`` ``score_test_proportions_2indep``, whose
    restricted-MLE cubic (0.15.0) has ``count0`` where ``nobs0`` belongs for ``delta0 != 0``
    (statsmodels issue #10269); the tests check the restricted MLE against a numerical
    maximisation of the likelihood.

    References
    ----------
    .. [1] C. P. Farrington and G. Manning, Statistics in Medicine 9(12):1447-1454, 1990.
    .. [2] O. Miettinen and M. Nurminen, Statistics in Medicine 4(2):213-226, 1985.
    """
    ca, na = check_count_n(count_a, n_a)
    cb, nb = check_count_n(count_b, n_b)
    if not -1.0 < delta0 < 1.0 or not math.isfinite(delta0):
        raise ValueError(f"delta0 must lie in (-1, 1), got {delta0!r}")
    if delta0 == 0.0:
        q = (ca + cb) / (na + nb)
        qa = qb = q
    else:
        qa, qb = _fm_restricted_mle(ca, na, cb, nb, float(delta0))
    var = qa * (1.0 - qa) / na + qb * (1.0 - qb) / nb
    num = ca / na - cb / nb - delta0
    if var <= 0.0:
        return None
    return num / math.sqrt(var)


def unpaired_comparison_counts(
    count_a: int, n_a: int, count_b: int, n_b: int, *, alpha: float
) -> UnpairedComparison:
    """Newcombe interval plus the two-sided score (pooled z) test of equal proportions.

    The test is the score test at ``delta0 = 0``,
    ``z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))`` with the pooled ``p`` and
    ``p = 2 (1 - Phi(|z|))`` (equal to statsmodels ``test_proportions_2indep(method="score",
    compare="diff", correction=False)``, checked in the tests). When both rates are 0 or both
    are 1 the pooled variance is 0: the statistic and p-value are ``None`` with a reason.

    References
    ----------
    .. [1] R. G. Newcombe, Statistics in Medicine 17(8):873-890, 1998.
    .. [2] O. Miettinen and M. Nurminen, "Comparative analysis of two rates", Statistics in
       Medicine 4(2):213-226, 1985.
    """
    diff = newcombe_unpaired_interval(count_a, n_a, count_b, n_b, alpha=alpha)
    ca, cb = int(count_a), int(count_b)
    direction = direction_of(diff.estimate)
    z = farrington_manning_z(ca, diff.n_a, cb, diff.n_b, delta0=0.0)
    if z is None:
        pooled = (ca + cb) / (diff.n_a + diff.n_b)
        test = TestResult(
            method="score-2indep", statistic=None, p_value=None, alternative="two-sided",
            direction=direction, n=diff.n_a + diff.n_b, alpha=diff.alpha,
            undefined_reason=f"both rates are {pooled:g}: the pooled variance is zero",
        )
        return UnpairedComparison(difference=diff, test=test)
    p = float(2.0 * _sps.norm.sf(abs(z)))
    test = TestResult(
        method="score-2indep", statistic=z, p_value=min(1.0, p), alternative="two-sided",
        direction=direction, n=diff.n_a + diff.n_b, alpha=diff.alpha,
    )
    return UnpairedComparison(difference=diff, test=test)


def _disjoint_counts(a: Mapping[str, bool], b: Mapping[str, bool]) -> tuple[int, int, int, int]:
    shared = sorted(set(a) & set(b))
    if shared:
        raise ValueError(
            f"runs share {len(shared)} pair ids (e.g. {shared[:5]}): use the paired comparison "
            "on the shared pairs, not an unpaired one"
        )
    for name, arm in (("a", a), ("b", b)):
        if not arm:
            raise ValueError(f"n = 0: no pairs in arm {name}")
        for pid, v in arm.items():
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"arm {name}: verdict for {pid!r} must be bool, got {v!r}")
    return sum(bool(v) for v in a.values()), len(a), sum(bool(v) for v in b.values()), len(b)


def unpaired_comparison(
    a: Mapping[str, bool], b: Mapping[str, bool], *, alpha: float
) -> UnpairedComparison:
    """As :func:`unpaired_comparison_counts` from per-pair verdicts of two runs sharing no pairs.

    Raises ``ValueError`` if the runs share pair ids (they must be compared paired).
    """
    ca, na, cb, nb = _disjoint_counts(a, b)
    return unpaired_comparison_counts(ca, na, cb, nb, alpha=alpha)
