"""Ground-truth quality of a relevance map where the identity regions are known.

On the synthetic world the pixels that carry identity are known exactly (the identity mask), so
a map's quality can be measured directly, independently of any falsification test:

- **relevance mass accuracy**: the share of the map's positive relevance that falls inside the
  mask, ``sum(r+ inside) / sum(r+)``; undefined (None) for a map without positive relevance;
- **relevance rank accuracy**: the share of the ``|mask|`` highest-ranked pixels that lie inside
  the mask (ties ordered by pixel index, as the falsification regions order them);
- **mask ROC AUC**: the probability that a random mask pixel outranks a random background
  pixel, ties counted one half (Mann-Whitney; 0.5 for a constant or mask-blind map).

The measures are computed on the map the test ranks (signed or ``|phi|``, as declared).

References
----------
L. Arras, A. Osman, W. Samek, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation
of neural network explanations", Information Fusion 81, 2022 (relevance mass and rank accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

__all__ = ["MapQuality", "map_quality"]


@dataclass(frozen=True, slots=True)
class MapQuality:
    """Ground-truth quality measures of one map (fractions in [0, 1]).

    Attributes
    ----------
    roc_auc : float
        Map-vs-mask ROC AUC.
    rank_accuracy : float
        Share of the top-``|mask|`` pixels inside the mask.
    mass_accuracy : float or None
        Share of positive relevance inside the mask; None when the map has none.
    """

    roc_auc: float
    rank_accuracy: float
    mass_accuracy: float | None

    def __post_init__(self) -> None:
        for name in ("roc_auc", "rank_accuracy", "mass_accuracy"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"map quality {name}={value!r} outside [0, 1]")


def map_quality(relevance: NDArray[np.float64], mask: NDArray[np.bool_]) -> MapQuality:
    """Measure a finite (H, W) map against a boolean (H, W) ground-truth mask.

    Parameters
    ----------
    relevance : ndarray (H, W)
        The ranked map (higher = more relevant); must be finite.
    mask : ndarray of bool (H, W)
        The ground-truth relevant pixels; needs at least one pixel inside and one outside.

    Returns
    -------
    MapQuality
    """
    flat = np.asarray(relevance, dtype=np.float64).ravel()
    inside = np.asarray(mask, dtype=np.bool_).ravel()
    if flat.shape != inside.shape:
        raise ValueError(f"map of {flat.size} pixels vs mask of {inside.size} pixels")
    if not np.isfinite(flat).all():
        raise ValueError("map quality needs a finite map")
    n_in = int(inside.sum())
    n_out = inside.size - n_in
    if n_in == 0 or n_out == 0:
        raise ValueError(f"ground-truth mask needs pixels inside and outside, got {n_in} inside "
                         f"of {inside.size}")
    ranks = rankdata(flat)
    auc = (float(ranks[inside].sum()) - n_in * (n_in + 1) / 2.0) / (n_in * n_out)
    order = np.argsort(-flat, kind="stable")  # ties by pixel index, as the regions break them
    rank_accuracy = float(inside[order[:n_in]].mean())
    positive = np.clip(flat, 0.0, None)
    total = float(positive.sum())
    mass = None if total == 0.0 else min(float(positive[inside].sum()) / total, 1.0)
    return MapQuality(roc_auc=min(max(auc, 0.0), 1.0), rank_accuracy=rank_accuracy,
                      mass_accuracy=mass)
