"""Paired comparisons joined on ``pair_id``.

Every function here takes one mapping ``pair_id -> value`` per arm and joins them itself; arms
over different pair sets raise ``ValueError`` naming the ids that differ (PITFALLS #10: never a
"paired" test on lists truncated to equal length).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

import numpy as np
from scipy import stats as _sps
from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from faceattr.stats.effects import cohens_h
from faceattr.stats.means import MeanInterval, MeanMethod, as_float_array, mean_interval
from faceattr.stats.proportions import check_alpha, proportion_interval
from faceattr.stats.records import (
    Alternative,
    DifferenceInterval,
    PairedTable,
    TestResult,
    check_probability,
    direction_of,
)

__all__ = [
    "CochranQResult",
    "McNemarResult",
    "WilcoxonResult",
    "align_pairs",
    "paired_cochran_q",
    "paired_mcnemar",
    "paired_mean_difference",
    "paired_risk_difference",
    "paired_table",
    "paired_wilcoxon",
]

T = TypeVar("T")
_N_SHOWN = 5


def _check_ids(arms: Sequence[Mapping[str, object]], names: Sequence[str]) -> list[str]:
    if len(arms) < 2:
        raise ValueError(f"a paired comparison needs at least 2 arms, got {len(arms)}")
    ref = set(arms[0])
    for name, arm in zip(names[1:], arms[1:], strict=True):
        other = set(arm)
        if other != ref:
            only_ref = sorted(ref - other)
            only_other = sorted(other - ref)
            raise ValueError(
                f"arms are over different pair sets: {len(only_ref)} pair ids only in "
                f"{names[0]!r} (e.g. {only_ref[:_N_SHOWN]}), {len(only_other)} only in "
                f"{name!r} (e.g. {only_other[:_N_SHOWN]}); compare runs on identical pairs "
                "or use the unpaired comparison"
            )
    if not ref:
        raise ValueError("n = 0: no pairs")
    for pid in ref:
        if not isinstance(pid, str):
            raise TypeError(f"pair ids must be str, got {type(pid).__name__} {pid!r}")
    return sorted(ref)


def align_pairs(
    *arms: Mapping[str, T], names: Sequence[str] | None = None
) -> tuple[list[str], list[list[T]]]:
    """Join arms on ``pair_id``.

    Returns the sorted pair ids and, per arm, its values in that order. Raises ``ValueError``
    naming the symmetric difference (first few ids each way) if the pair sets differ, and on
    zero pairs.
    """
    labels = list(names) if names is not None else [f"arm {i}" for i in range(len(arms))]
    if len(labels) != len(arms):
        raise ValueError(f"{len(labels)} names for {len(arms)} arms")
    ids = _check_ids(arms, labels)
    return ids, [[arm[i] for i in ids] for arm in arms]


def _bools(values: list[object], name: str) -> list[bool]:
    out: list[bool] = []
    for v in values:
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(
                f"{name}: binary verdicts must be bool, got {type(v).__name__} {v!r} "
                "(refusing fractions, percentages and 0/1 numbers)"
            )
        out.append(bool(v))
    return out


def paired_table(a: Mapping[str, bool], b: Mapping[str, bool]) -> PairedTable:
    """2x2 table of two binary arms joined on pair_id."""
    _, (va, vb) = align_pairs(a, b, names=("a", "b"))
    xa = _bools(list(va), "a")
    xb = _bools(list(vb), "b")
    both = sum(1 for p, q in zip(xa, xb, strict=True) if p and q)
    a_only = sum(1 for p, q in zip(xa, xb, strict=True) if p and not q)
    b_only = sum(1 for p, q in zip(xa, xb, strict=True) if q and not p)
    neither = len(xa) - both - a_only - b_only
    return PairedTable(n_both=both, n_a_only=a_only, n_b_only=b_only, n_neither=neither)


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """Exact McNemar test of two binary arms on the same pairs: the table and the test."""

    table: PairedTable
    test: TestResult

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {"table": self.table.to_json(), "test": self.test.to_json()}


def paired_mcnemar(
    a: Mapping[str, bool], b: Mapping[str, bool], *, alpha: float
) -> McNemarResult:
    """Exact (binomial) McNemar test, two-sided, joined on pair_id.

    Conditional on the ``m`` discordant pairs, the count favouring arm a is Binomial(m, 1/2)
    under H0; ``p = min(1, 2 * P[X <= min(n_a_only, n_b_only)])`` (statsmodels
    ``mcnemar(exact=True)``). The statistic is ``min(n_a_only, n_b_only)``. Concordant pairs do
    not enter. Zero discordant pairs: statistic 0, ``p = 1`` exactly (defined).

    References
    ----------
    .. [1] Q. McNemar, "Note on the sampling error of the difference between correlated
       proportions or percentages", Psychometrika 12(2):153-157, 1947.
    """
    a_ = check_alpha(alpha)
    t = paired_table(a, b)
    direction = direction_of(t.n_a_only - t.n_b_only)
    if t.n_discordant == 0:
        stat, p = 0.0, 1.0
    else:
        res = _sm_mcnemar(
            np.array([[t.n_both, t.n_a_only], [t.n_b_only, t.n_neither]]),
            exact=True, correction=False,
        )
        stat, p = float(res.statistic), min(1.0, float(res.pvalue))
    test = TestResult(
        method="mcnemar-exact", statistic=stat, p_value=p, alternative="two-sided",
        direction=direction, n=t.n, alpha=a_,
    )
    return McNemarResult(table=t, test=test)


@dataclass(frozen=True, slots=True)
class CochranQResult:
    """Cochran's Q test of k >= 2 binary arms on the same pairs."""

    arm_names: tuple[str, ...]
    rates: tuple[float, ...]
    n_pairs: int
    test: TestResult

    def __post_init__(self) -> None:
        if len(self.arm_names) != len(self.rates) or len(self.arm_names) < 2:
            raise ValueError("need >= 2 arm names, one rate each")
        for r in self.rates:
            check_probability("rate", r)

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {
            "arm_names": list(self.arm_names),
            "rates": list(self.rates),
            "n_pairs": self.n_pairs,
            "test": self.test.to_json(),
        }


def paired_cochran_q(arms: Mapping[str, Mapping[str, bool]], *, alpha: float) -> CochranQResult:
    """Cochran's Q test that k binary arms (e.g. methods) have equal rates on the same pairs.

    ``Q = (k-1) [k sum_j C_j^2 - N^2] / (k N - sum_i R_i^2)`` with column totals ``C_j``, row
    totals ``R_i`` and grand total ``N``; ``p = chi2.sf(Q, k-1)`` (statsmodels
    ``cochrans_q``). If no pair varies across arms (every row all-True or all-False) Q is 0/0:
    statistic and p-value are ``None`` with a reason. ``direction`` is ``"none"`` (an omnibus
    test has no single direction).

    References
    ----------
    .. [1] W. G. Cochran, "The comparison of percentages in matched samples", Biometrika
       37(3/4):256-266, 1950.
    """
    a_ = check_alpha(alpha)
    names = list(arms)
    for nm in names:
        if not isinstance(nm, str):
            raise TypeError(f"arm names must be str, got {nm!r}")
    _, values = align_pairs(*[arms[nm] for nm in names], names=names)
    cols = [_bools(list(v), nm) for nm, v in zip(names, values, strict=True)]
    x = np.array(cols, dtype=np.int64).T  # (n_pairs, k)
    n, k = x.shape
    rates = tuple(float(c) for c in x.mean(axis=0))
    row = x.sum(axis=1)
    if np.all((row == 0) | (row == k)):
        test = TestResult(
            method="cochran-q", statistic=None, p_value=None, alternative="two-sided",
            direction="none", n=n, alpha=a_, df=float(k - 1),
            undefined_reason="no pair varies across arms (every pair concordant): Q is 0/0",
        )
    else:
        res = _sm_cochrans_q(x)
        test = TestResult(
            method="cochran-q", statistic=float(res.statistic), p_value=float(res.pvalue),
            alternative="two-sided", direction="none", n=n, alpha=a_, df=float(res.df),
        )
    return CochranQResult(arm_names=tuple(names), rates=rates, n_pairs=n, test=test)


@dataclass(frozen=True, slots=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test on paired differences ``a - b``."""

    test: TestResult
    n_pairs: int
    n_nonzero: int
    zero_method: str
    median_difference: float

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {
            "test": self.test.to_json(),
            "n_pairs": self.n_pairs,
            "n_nonzero": self.n_nonzero,
            "zero_method": self.zero_method,
            "median_difference": self.median_difference,
        }


ZeroMethod = Literal["wilcox", "pratt", "zsplit"]
WilcoxonPMethod = Literal["exact", "asymptotic"]
_SCIPY_ALT = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}


def paired_wilcoxon(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    alpha: float,
    alternative: Alternative,
    zero_method: ZeroMethod,
    p_method: WilcoxonPMethod,
) -> WilcoxonResult:
    """Wilcoxon signed-rank test on per-pair differences ``a - b`` (e.g. margins), on pair_id.

    Thin wrapper over ``scipy.stats.wilcoxon`` with every option explicit. ``"larger"`` is the
    alternative that a's values exceed b's. ``p_method="exact"`` is refused when there are
    zero differences or ties (the exact null distribution assumes neither). All-zero
    differences: the statistic is undefined (``None`` with a reason).

    The statistic is scipy's: ``min(r_plus, r_minus)`` for ``"two-sided"``, ``r_plus`` (the
    rank sum of positive differences) otherwise. ``direction`` is the sign of
    ``r_plus - r_minus``. ``"pratt"`` ranks zeros then drops them; ``"wilcox"`` drops them
    first; ``"zsplit"`` splits their ranks.

    References
    ----------
    .. [1] F. Wilcoxon, "Individual comparisons by ranking methods", Biometrics Bulletin
       1(6):80-83, 1945.
    """
    a_ = check_alpha(alpha)
    if alternative not in _SCIPY_ALT:
        raise ValueError(f"alternative must be one of {tuple(_SCIPY_ALT)}, got {alternative!r}")
    if zero_method not in get_args(ZeroMethod):
        raise ValueError(f"zero_method must be one of {get_args(ZeroMethod)}, got {zero_method!r}")
    if p_method not in get_args(WilcoxonPMethod):
        raise ValueError(f"p_method must be one of {get_args(WilcoxonPMethod)}, got {p_method!r}")
    _, (va, vb) = align_pairs(a, b, names=("a", "b"))
    d = as_float_array(va, name="a") - as_float_array(vb, name="b")
    n = int(d.size)
    nz = d[d != 0]
    med = float(np.median(d))
    signed_rank_sum = float(np.sum(np.sign(nz) * _sps.rankdata(np.abs(nz)))) if nz.size else 0.0
    direction = direction_of(signed_rank_sum)
    if nz.size == 0:
        test = TestResult(
            method=f"wilcoxon-signed-rank/{zero_method}/{p_method}", statistic=None,
            p_value=None, alternative=alternative, direction="none", n=n, alpha=a_,
            undefined_reason="all paired differences are zero: the signed-rank test is undefined",
        )
        return WilcoxonResult(test=test, n_pairs=n, n_nonzero=0, zero_method=zero_method,
                              median_difference=med)
    if p_method == "exact":
        if nz.size != n:
            raise ValueError(
                f"p_method='exact' with {n - nz.size} zero differences: the exact null "
                "distribution does not apply; use p_method='asymptotic'"
            )
        if np.unique(np.abs(nz)).size != nz.size:
            raise ValueError(
                "p_method='exact' with tied |differences|: the exact null distribution does "
                "not apply; use p_method='asymptotic'"
            )
    res = _sps.wilcoxon(
        d, zero_method=zero_method, correction=False, alternative=_SCIPY_ALT[alternative],
        method=p_method, nan_policy="raise",
    )
    stat = float(res.statistic)
    p = float(res.pvalue)
    if not (math.isfinite(stat) and math.isfinite(p)):
        test = TestResult(
            method=f"wilcoxon-signed-rank/{zero_method}/{p_method}", statistic=None,
            p_value=None, alternative=alternative, direction=direction, n=n, alpha=a_,
            undefined_reason="scipy.stats.wilcoxon returned a non-finite value",
        )
    else:
        test = TestResult(
            method=f"wilcoxon-signed-rank/{zero_method}/{p_method}", statistic=stat,
            p_value=min(1.0, p), alternative=alternative, direction=direction, n=n, alpha=a_,
        )
    return WilcoxonResult(test=test, n_pairs=n, n_nonzero=int(nz.size), zero_method=zero_method,
                          median_difference=med)


def _newcombe_paired(t: PairedTable, alpha: float) -> tuple[float, float]:
    """Newcombe (1998b) method 10: hybrid Wilson score interval for a paired difference."""
    n = t.n
    p1, p2 = t.rate_a, t.rate_b
    w1 = proportion_interval(t.n_both + t.n_a_only, n, method="wilson", alpha=alpha)
    w2 = proportion_interval(t.n_both + t.n_b_only, n, method="wilson", alpha=alpha)
    l1, u1, l2, u2 = w1.low, w1.high, w2.low, w2.high
    aa, bb, cc, dd = t.n_both, t.n_a_only, t.n_b_only, t.n_neither
    denom = (aa + bb) * (cc + dd) * (aa + cc) * (bb + dd)
    if denom == 0:
        phi = 0.0
    else:
        num = aa * dd - bb * cc
        # continuity-corrected phi as in Newcombe (1998b), method 10
        num_c = max(num - n / 2.0, 0.0) if num > 0 else float(num)
        phi = num_c / math.sqrt(denom)
    d = p1 - p2
    dl = (p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = d - math.sqrt(max(dl, 0.0))
    high = d + math.sqrt(max(du, 0.0))
    return max(low, -1.0), min(high, 1.0)


def paired_risk_difference(
    a: Mapping[str, bool], b: Mapping[str, bool], *, alpha: float
) -> DifferenceInterval:
    """Paired risk difference ``rate_a - rate_b`` with Newcombe's hybrid score interval.

    Method 10 of Newcombe (1998b): the Wilson intervals of the two marginal rates combined with
    the (continuity-corrected) phi correlation of the 2x2 table; phi = 0 when a margin is empty.
    Defined for rates of 0 or 1. Also reports Cohen's h.

    References
    ----------
    .. [1] R. G. Newcombe, "Improved confidence intervals for the difference between binomial
       proportions based on paired data", Statistics in Medicine 17(22):2635-2650, 1998.
    .. [2] J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 1988.
    """
    a_ = check_alpha(alpha)
    t = paired_table(a, b)
    low, high = _newcombe_paired(t, a_)
    est = t.rate_a - t.rate_b
    return DifferenceInterval(
        estimate=est, low=min(low, est), high=max(high, est), rate_a=t.rate_a, rate_b=t.rate_b,
        n_a=t.n, n_b=t.n, paired=True, cohens_h=cohens_h(t.rate_a, t.rate_b),
        method="newcombe-paired-hybrid-score", alpha=a_,
    )


def paired_mean_difference(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    method: MeanMethod,
    alpha: float,
    rng: np.random.Generator | None,
    n_resamples: int | None,
) -> MeanInterval:
    """Mean of the per-pair differences ``a - b`` (joined on pair_id) with its interval.

    Resamples pairs (the pair bootstrap) or uses the t interval; see
    :func:`faceattr.stats.means.mean_interval`.
    """
    _, (va, vb) = align_pairs(a, b, names=("a", "b"))
    d = as_float_array(va, name="a") - as_float_array(vb, name="b")
    return mean_interval(d, method=method, alpha=alpha, rng=rng, n_resamples=n_resamples)
