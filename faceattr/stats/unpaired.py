"""Unpaired two-proportion comparison for runs that share no pairs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from faceattr.stats.effects import cohens_h
from faceattr.stats.proportions import check_alpha, check_count_n
from faceattr.stats.records import DifferenceInterval, TestResult, direction_of

__all__ = [
    "UnpairedComparison",
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


def unpaired_comparison_counts(
    count_a: int, n_a: int, count_b: int, n_b: int, *, alpha: float
) -> UnpairedComparison:
    """Newcombe interval plus the two-sided score (pooled z) test of equal proportions.

    The test is ``statsmodels`` ``test_proportions_2indep(method="score", compare="diff",
    value=0, correction=False)``, i.e. ``z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))``
    with the pooled ``p``. When both rates are 0 or both are 1 the pooled variance is 0: the
    statistic and p-value are ``None`` with a reason.

    References
    ----------
    .. [1] R. G. Newcombe, Statistics in Medicine 17(8):873-890, 1998.
    .. [2] O. Miettinen and M. Nurminen, "Comparative analysis of two rates", Statistics in
       Medicine 4(2):213-226, 1985.
    """
    diff = newcombe_unpaired_interval(count_a, n_a, count_b, n_b, alpha=alpha)
    ca, cb = int(count_a), int(count_b)
    pooled = (ca + cb) / (diff.n_a + diff.n_b)
    direction = direction_of(diff.estimate)
    if pooled in (0.0, 1.0):
        test = TestResult(
            method="score-2indep", statistic=None, p_value=None, alternative="two-sided",
            direction=direction, n=diff.n_a + diff.n_b, alpha=diff.alpha,
            undefined_reason=f"both rates are {pooled:g}: the pooled variance is zero",
        )
        return UnpairedComparison(difference=diff, test=test)
    with warnings.catch_warnings():
        # Local only: statsmodels also computes a ratio p_a/p_b it does not use for
        # compare="diff", which warns when rate_b is 0; the outputs used are checked below.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = test_proportions_2indep(
            ca, diff.n_a, cb, diff.n_b, value=0.0, method="score", compare="diff",
            alternative="two-sided", correction=False, return_results=True,
        )
    stat, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(stat) and math.isfinite(p)):
        raise ArithmeticError(
            f"score test gave non-finite output ({stat}, {p}) on {ca}/{diff.n_a} vs {cb}/{diff.n_b}"
        )
    test = TestResult(
        method="score-2indep", statistic=stat, p_value=min(1.0, p), alternative="two-sided",
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
