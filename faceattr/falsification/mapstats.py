"""Statistics of a relevance map, for the uniformity claim and the report.

- range: ``max - min`` (0 for a constant map);
- normalised entropy of ``|phi| / sum |phi|``, in [0, 1] (1 = uniform, uninformative);
- Gini index of ``|phi|``, in [0, 1] (0 = uniform, near 1 = all mass on one pixel), as the
  sparseness measure of Chalasani et al., "Concise explanations of neural networks using
  adversarial training", ICML 2020;
- a digest of the map's bytes, so distinct methods can be shown to give distinct maps
  (PITFALLS.md #20).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MapStats", "map_stats"]


@dataclass(frozen=True, slots=True)
class MapStats:
    """Summary statistics of one map."""

    sha256: str
    range: float
    entropy_norm: float
    gini: float


def map_stats(relevance: NDArray[np.float64]) -> MapStats:
    """Statistics of a finite (H, W) map; an all-zero map counts as uniform."""
    flat = np.ascontiguousarray(relevance, dtype=np.float64).ravel()
    digest = hashlib.sha256(flat.tobytes()).hexdigest()
    magnitude = np.abs(flat)
    total = float(magnitude.sum())
    if total == 0.0:
        return MapStats(sha256=digest, range=float(np.ptp(flat)), entropy_norm=1.0, gini=0.0)
    p = magnitude / total
    nonzero = p[p > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum()) / math.log(flat.size)
    ordered = np.sort(magnitude)
    ranks = np.arange(1, flat.size + 1, dtype=np.float64)
    gini = float(((2 * ranks - flat.size - 1) * ordered).sum() / (flat.size * total))
    return MapStats(sha256=digest, range=float(np.ptp(flat)),
                    entropy_norm=min(max(entropy, 0.0), 1.0), gini=min(max(gini, 0.0), 1.0))
