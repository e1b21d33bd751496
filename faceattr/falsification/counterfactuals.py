"""Counterfactual images: a region filled, plus a small seeded perturbation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["FillStrategy", "counterfactuals"]

FillStrategy = Literal["mean", "zero"]


def counterfactuals(image: NDArray[np.float32], region_idx: NDArray[np.intp], *,
                    fill: FillStrategy, perturbation_sigma: float,
                    rngs: Sequence[np.random.Generator]) -> NDArray[np.float32]:
    """Return one counterfactual per generator, (K, 3, H, W), values clipped to [0, 1].

    The region's pixels are replaced by the fill value (``"mean"``: the image's per-channel
    mean; ``"zero"``: black) plus i.i.d. ``N(0, perturbation_sigma^2)`` noise drawn from the
    k-th generator, so every draw has its own keyed stream.
    """
    channels = image.shape[0]
    flat = image.reshape(channels, -1)
    if fill == "mean":
        base = flat.mean(axis=1, dtype=np.float64)[:, None]
    elif fill == "zero":
        base = np.zeros((channels, 1))
    else:
        raise ValueError(f"unknown fill {fill!r}; allowed: 'mean', 'zero'")
    out = np.repeat(flat[None], len(rngs), axis=0)
    for k, rng in enumerate(rngs):
        noise = rng.normal(0.0, perturbation_sigma, size=(channels, region_idx.size))
        out[k][:, region_idx] = np.clip(base + noise, 0.0, 1.0).astype(np.float32)
    return out.reshape(len(rngs), *image.shape)
