"""Per-pair measurements and verdicts of the falsification test (Theorem 3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import ttest_1samp

__all__ = ["DriftSummary", "TheoremVerdict", "simple_verdict_falsified", "summarise_drifts",
           "theorem_verdict"]


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """Means, SDs (ddof=1), margin and pairwise violation share of the two drift samples."""

    d_high_rad: float
    d_low_rad: float
    sd_high_rad: float
    sd_low_rad: float
    margin_rad: float
    pairwise_violation_frac: float


def summarise_drifts(drift_high: NDArray[np.float64], drift_low: NDArray[np.float64]
                     ) -> DriftSummary:
    """Summarise the K high-region and K low-region drifts of one pair.

    ``pairwise_violation_frac`` is the share of the K x K comparisons with
    ``d_high_i <= d_low_j`` (a fraction in [0, 1]).
    """
    if drift_high.size < 2 or drift_low.size < 2:
        raise ValueError("need at least 2 draws per region")
    d_high, d_low = float(drift_high.mean()), float(drift_low.mean())
    violations = float((drift_high[:, None] <= drift_low[None, :]).mean())
    return DriftSummary(d_high_rad=d_high, d_low_rad=d_low,
                        sd_high_rad=float(drift_high.std(ddof=1)),
                        sd_low_rad=float(drift_low.std(ddof=1)),
                        margin_rad=d_high - d_low, pairwise_violation_frac=violations)


def simple_verdict_falsified(summary: DriftSummary) -> bool:
    """The simple verdict: the attribution is falsified when ``margin <= 0``, i.e. removing the
    pixels it calls most relevant moves the embedding no more than removing the least relevant."""
    return summary.margin_rad <= 0.0


@dataclass(frozen=True, slots=True)
class TheoremVerdict:
    """Theorem 3.5 verdict of one pair, with its one-sided p-values.

    ``p_high`` tests H0: mean distance over S_high <= tau_high (against >); ``p_low`` tests
    H0: mean distance over S_low >= tau_low (against <). The attribution survives when both
    reject at ``alpha``; otherwise it is falsified.
    """

    falsified: bool
    p_high: float
    p_low: float


def _one_sided_p(sample: NDArray[np.float64], tau: float, alternative: str) -> float:
    """One-sample t-test p-value; a sample with no spread is decided exactly by its mean."""
    mean = float(sample.mean())
    spread = float(sample.std(ddof=1))
    if spread <= 1e-12 * max(1.0, abs(mean)):
        beyond = mean > tau if alternative == "greater" else mean < tau
        return 0.0 if beyond else 1.0
    result = ttest_1samp(sample, popmean=tau, alternative=alternative)
    return float(result.pvalue)


def theorem_verdict(high: NDArray[np.float64], low: NDArray[np.float64], *, tau_high: float,
                    tau_low: float, epsilon: float, alpha: float) -> TheoremVerdict:
    """Theorem 3.5 (falsifiability criterion) for one pair with non-empty regions.

    The attribution survives when (2) the mean distance over S_high exceeds ``tau_high`` and
    the mean over S_low stays below ``tau_low``, each by a one-sided one-sample t-test at
    level ``alpha`` (Student 1908), and (3) ``tau_high - tau_low >= epsilon``. Condition (1),
    non-empty regions, is checked by the region step (an empty region is a trivial map).

    Parameters
    ----------
    high, low : ndarray (K,)
        Distances (geodesic drifts in radians, or score drops) of the K counterfactuals.
    tau_high, tau_low, epsilon : float
        The declared thresholds, in the distance's unit.
    alpha : float
        Level of each one-sided test.
    """
    if high.size < 2 or low.size < 2:
        raise ValueError("need at least 2 draws per region")
    p_high = _one_sided_p(high, tau_high, "greater")
    p_low = _one_sided_p(low, tau_low, "less")
    survives = tau_high - tau_low >= epsilon and p_high < alpha and p_low < alpha
    return TheoremVerdict(falsified=not survives, p_high=p_high, p_low=p_low)
