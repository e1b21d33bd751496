"""Counterfactual images: a region filled, plus a small seeded perturbation.

Fill strategies: ``zero`` (black), ``mean`` (the image's per-channel mean), ``blur`` (the
image blurred with a declared Gaussian sigma, so only fine detail is removed) and ``noise``
(i.i.d. uniform values in [0, 1] from the draw's own stream). Each draw adds
``N(0, perturbation_sigma^2)`` noise from its own keyed generator; values are clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

__all__ = ["FILL_STRATEGIES", "FillStrategy", "counterfactuals"]

FillStrategy = Literal["zero", "mean", "blur", "noise"]
FILL_STRATEGIES: tuple[FillStrategy, ...] = ("zero", "mean", "blur", "noise")


def _base_values(flat: NDArray[np.float32], image: NDArray[np.float32], fill: FillStrategy,
                 blur_sigma_px: float) -> NDArray[np.float64]:
    """Deterministic fill, (C, 1) or (C, H*W)."""
    channels = flat.shape[0]
    if fill == "zero" or fill == "noise":
        return np.zeros((channels, 1))
    if fill == "mean":
        means: NDArray[np.float64] = flat.mean(axis=1, dtype=np.float64)
        return means[:, None]
    if fill == "blur":
        if blur_sigma_px <= 0:
            raise ValueError(f"blur fill needs blur_sigma_px > 0, got {blur_sigma_px}")
        blurred = np.stack([gaussian_filter(c.astype(np.float64), sigma=blur_sigma_px,
                                            mode="reflect") for c in image])
        return blurred.reshape(channels, -1)
    raise ValueError(f"unknown fill {fill!r}; allowed: {', '.join(FILL_STRATEGIES)}")


def counterfactuals(image: NDArray[np.float32], region_idx: NDArray[np.intp], *,
                    fill: FillStrategy, perturbation_sigma: float,
                    rngs: Sequence[np.random.Generator],
                    blur_sigma_px: float = 0.0,
                    out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Return one counterfactual per generator, (K, 3, H, W), values clipped to [0, 1].

    Parameters
    ----------
    image : ndarray (C, H, W)
        The clean probe, float32 in [0, 1].
    region_idx : ndarray of int
        Flat pixel indices of the region to fill.
    fill : {"zero", "mean", "blur", "noise"}
        Fill strategy.
    perturbation_sigma : float
        SD of the per-pixel Gaussian perturbation added to the fill (0 for none).
    rngs : sequence of numpy.random.Generator
        One generator per draw, keyed ``(seed, pair_id, model, method, region, k)``.
    blur_sigma_px : float
        Gaussian sigma of the ``blur`` fill, pixels.
    out : ndarray (K, C, H, W) of float32 or None
        C-contiguous array to write the counterfactuals into (returned); ``None`` allocates.
    """
    channels = image.shape[0]
    flat = image.reshape(channels, -1)
    base = _base_values(flat, image, fill, blur_sigma_px)
    region_base = base if base.shape[1] == 1 else base[:, region_idx]
    shape = (len(rngs), *image.shape)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    rows = out.reshape(len(rngs), channels, -1)  # a view: out is C-contiguous
    rows[:] = flat
    for k, rng in enumerate(rngs):
        values = region_base
        if fill == "noise":
            values = rng.uniform(0.0, 1.0, size=(channels, region_idx.size))
        if perturbation_sigma > 0:
            values = values + rng.normal(0.0, perturbation_sigma,
                                         size=(channels, region_idx.size))
        rows[k][:, region_idx] = np.clip(values, 0.0, 1.0)  # cast to float32 on assignment
    return out
