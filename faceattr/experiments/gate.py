"""Model gate: is this a face-verification model on these pairs? (PITFALLS.md #16)"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from faceattr.runfolder.summary import GateResult

__all__ = ["model_gate", "roc_auc", "tar_at_far"]


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


def tar_at_far(scores: NDArray[np.float64], is_positive: NDArray[np.bool_],
               far: float) -> float:
    """True-accept rate at a false-accept rate of at most ``far``.

    The threshold is the lowest impostor score that lets at most ``floor(far * n_impostor)``
    impostors score above it; TAR is the share of genuine pairs strictly above it (so with
    few impostors the achieved FAR is 0, and TAR is conservative).
    """
    impostor = np.sort(scores[~is_positive])
    genuine = scores[is_positive]
    if impostor.size == 0 or genuine.size == 0:
        raise ValueError("TAR@FAR needs both genuine and impostor pairs")
    allowed = int(np.floor(far * impostor.size))
    threshold = impostor[impostor.size - 1 - allowed]
    return float((genuine > threshold).mean())


def model_gate(model: str, scores: NDArray[np.float64], is_genuine: NDArray[np.bool_], *,
               min_auc: float) -> GateResult:
    """Judge the model on the run's pairs."""
    auc = roc_auc(scores, is_genuine)
    return GateResult(model=model, auc=auc, n_genuine=int(is_genuine.sum()),
                      n_impostor=int((~is_genuine).sum()), min_auc=min_auc,
                      passed=auc >= min_auc,
                      tar_at_far_1e2=tar_at_far(scores, is_genuine, 1e-2),
                      tar_at_far_1e3=tar_at_far(scores, is_genuine, 1e-3))
