"""Model gate: is this a face-verification model on these pairs? (PITFALLS.md #16)"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from faceattr.experiments.summary import GateResult

__all__ = ["model_gate", "roc_auc"]


def roc_auc(scores: NDArray[np.float64], is_positive: NDArray[np.bool_]) -> float:
    """ROC AUC as the Mann-Whitney probability ``P(s+ > s-) + P(s+ = s-)/2``.

    References
    ----------
    J. A. Hanley, B. J. McNeil, "The meaning and use of the area under a receiver operating
    characteristic (ROC) curve", Radiology 143, 1982.
    """
    n_pos = int(is_positive.sum())
    n_neg = int(is_positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} genuine and {n_neg} impostor")
    ranks = rankdata(scores, method="average")
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def model_gate(model: str, scores: NDArray[np.float64], is_genuine: NDArray[np.bool_], *,
               min_auc: float) -> GateResult:
    """Judge the model on the run's pairs."""
    auc = roc_auc(scores, is_genuine)
    return GateResult(model=model, auc=auc, n_genuine=int(is_genuine.sum()),
                      n_impostor=int((~is_genuine).sum()), min_auc=min_auc,
                      passed=auc >= min_auc)
