"""Counterfactual images: a region filled, plus a small seeded perturbation.

Fill strategies: ``zero`` (black), ``mean`` (the image's per-channel mean), ``blur`` (the
image blurred with a declared Gaussian sigma, so only fine detail is removed), ``noise``
(i.i.d. uniform values in [0, 1] from the draw's own stream) and ``nli``, the noisy linear
imputation of ROAD (Rong et al., "A consistent and efficient evaluation strategy for attribution
methods", ICML 2022): every removed pixel is the weighted mean of its eight neighbours (weight
1/6 for edge and 1/12 for corner neighbours), solved jointly as one sparse linear system, so the
fill continues the surrounding image and the removed region's shape leaks as little as possible;
the draw's perturbation is the "noisy" part. Each draw adds
``N(0, perturbation_sigma^2)`` noise from its own keyed generator; values are clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse.linalg import spsolve

__all__ = ["FILL_STRATEGIES", "FillStrategy", "counterfactuals"]

FillStrategy = Literal["zero", "mean", "blur", "noise", "nli"]
FILL_STRATEGIES: tuple[FillStrategy, ...] = ("zero", "mean", "blur", "noise", "nli")

# ROAD's neighbour weights: (dy, dx, weight)
_NLI_NEIGHBOURS = tuple((dy, dx, 1.0 / 12.0 if dy and dx else 1.0 / 6.0)
                        for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def linear_imputation(image: NDArray[np.float32], region_idx: NDArray[np.intp]
                      ) -> NDArray[np.float64]:
    """ROAD's linear imputation of the region's pixels, (C, |region|).

    Each region pixel ``u`` satisfies ``sum_n w_n (x_u - x_n) = 0`` over its in-image
    neighbours ``n``; neighbours outside the region are known values. One sparse solve serves
    every channel.
    """
    channels, height, width = image.shape
    n = region_idx.size
    unknown = np.full(height * width, -1, dtype=np.intp)
    unknown[region_idx] = np.arange(n)
    ys, xs = np.divmod(region_idx, width)
    flat = image.reshape(channels, -1).astype(np.float64)
    rows: list[NDArray[np.intp]] = []
    cols: list[NDArray[np.intp]] = []
    vals: list[NDArray[np.float64]] = []
    diagonal = np.zeros(n)
    rhs = np.zeros((n, channels))
    for dy, dx, weight in _NLI_NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        at = np.flatnonzero(inside)
        neighbour = ny[at] * width + nx[at]
        diagonal[at] += weight
        column = unknown[neighbour]
        free = column >= 0
        rows.append(at[free])
        cols.append(column[free])
        vals.append(np.full(int(free.sum()), -weight))
        rhs[at[~free]] += weight * flat[:, neighbour[~free]].T
    matrix = sparse.csr_matrix(
        (np.concatenate([diagonal, *vals]),
         (np.concatenate([np.arange(n), *rows]), np.concatenate([np.arange(n), *cols]))),
        shape=(n, n))
    solution = np.asarray(spsolve(matrix.tocsc(), rhs)).reshape(n, channels)
    values: NDArray[np.float64] = solution.T
    return values


def _base_values(flat: NDArray[np.float32], image: NDArray[np.float32], fill: FillStrategy,
                 blur_sigma_px: float, region_idx: NDArray[np.intp]) -> NDArray[np.float64]:
    """Deterministic fill of the region, (C, 1) or (C, |region|)."""
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
        region: NDArray[np.float64] = blurred.reshape(channels, -1)[:, region_idx]
        return region
    if fill == "nli":
        return linear_imputation(image, region_idx)
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
    fill : {"zero", "mean", "blur", "noise", "nli"}
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
    region_base = _base_values(flat, image, fill, blur_sigma_px, region_idx)
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
