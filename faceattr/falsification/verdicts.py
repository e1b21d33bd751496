"""Per-pair measurements and verdicts of the falsification test (Theorem 3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DriftSummary", "simple_verdict_falsified", "summarise_drifts"]


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
