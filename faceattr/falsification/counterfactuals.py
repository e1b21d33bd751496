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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse.linalg import spsolve

from faceattr.registry import Registry

__all__ = ["FILLS", "FILL_REGISTRY", "FILL_STRATEGIES", "Fill", "FillStrategy", "counterfactuals",
           "fill_of"]

FillStrategy = str
"""A fill's name: a built-in (:data:`FILL_STRATEGIES`), an entry point in group
``faceattr.fills`` or an import path ``"package.module:fill"`` of a :class:`Fill`."""
FILL_STRATEGIES: tuple[str, ...] = ("zero", "mean", "blur", "noise", "nli")

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


@dataclass(frozen=True, slots=True)
class Fill:
    """What replaces a region's pixels before the perturbation.

    Attributes
    ----------
    name : str
    values : callable
        ``values(image (C, H, W) float32, region_idx, blur_sigma_px) -> (C, 1) or (C, |region|)``
        float64: the deterministic fill of the region, computed once per counterfactual set.
    draw : callable or None
        ``draw(rng, channels, n_pixels) -> (C, n_pixels)``: a fill drawn anew for every
        counterfactual from its keyed generator (replaces ``values``); None for deterministic
        fills.
    """

    name: str
    values: Callable[[NDArray[np.float32], NDArray[np.intp], float], NDArray[np.float64]]
    draw: Callable[[np.random.Generator, int, int], NDArray[np.float64]] | None = None


def _zero(image: NDArray[np.float32], region_idx: NDArray[np.intp],
          blur_sigma_px: float) -> NDArray[np.float64]:
    del region_idx, blur_sigma_px
    return np.zeros((image.shape[0], 1))


def _mean(image: NDArray[np.float32], region_idx: NDArray[np.intp],
          blur_sigma_px: float) -> NDArray[np.float64]:
    del region_idx, blur_sigma_px
    means: NDArray[np.float64] = image.reshape(image.shape[0], -1).mean(axis=1,
                                                                          dtype=np.float64)
    return means[:, None]


def _blur(image: NDArray[np.float32], region_idx: NDArray[np.intp],
          blur_sigma_px: float) -> NDArray[np.float64]:
    if blur_sigma_px <= 0:
        raise ValueError(f"blur fill needs blur_sigma_px > 0, got {blur_sigma_px}")
    blurred = np.stack([gaussian_filter(c.astype(np.float64), sigma=blur_sigma_px,
                                        mode="reflect") for c in image])
    region: NDArray[np.float64] = blurred.reshape(image.shape[0], -1)[:, region_idx]
    return region


def _nli(image: NDArray[np.float32], region_idx: NDArray[np.intp],
         blur_sigma_px: float) -> NDArray[np.float64]:
    del blur_sigma_px
    return linear_imputation(image, region_idx)


def _uniform_noise(rng: np.random.Generator, channels: int, n: int) -> NDArray[np.float64]:
    return rng.uniform(0.0, 1.0, size=(channels, n))


FILLS: Mapping[str, Fill] = MappingProxyType({
    "zero": Fill("zero", _zero), "mean": Fill("mean", _mean), "blur": Fill("blur", _blur),
    "noise": Fill("noise", _zero, draw=_uniform_noise), "nli": Fill("nli", _nli)})
"""The built-in fills (ROAD's noisy linear imputation is ``nli``, Rong et al. 2022)."""


def _check_fill(name: str, obj: object) -> Fill:
    if not isinstance(obj, Fill):
        raise TypeError(f"{obj!r} is not a faceattr.falsification.counterfactuals.Fill")
    return obj


#: Built-ins, entry points in group ``faceattr.fills`` and import paths.
FILL_REGISTRY: Registry[Fill] = Registry(kind="fill", builtins=lambda: FILLS, check=_check_fill)


def fill_of(name: str, where: str = "[falsification]") -> Fill:
    """The fill ``name`` names."""
    return FILL_REGISTRY.resolve(name, where)


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
    fill : str
        The fill's name (:func:`fill_of`): ``"zero"``, ``"mean"``, ``"blur"``, ``"noise"``,
        ``"nli"`` or a user's registered :class:`Fill`.
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
    spec = fill_of(fill)
    region_base = spec.values(image, region_idx, blur_sigma_px)
    shape = (len(rngs), *image.shape)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    rows = out.reshape(len(rngs), channels, -1)  # a view: out is C-contiguous
    rows[:] = flat
    for k, rng in enumerate(rngs):
        values = region_base
        if spec.draw is not None:
            values = spec.draw(rng, channels, region_idx.size)
        if perturbation_sigma > 0:
            values = values + rng.normal(0.0, perturbation_sigma,
                                         size=(channels, region_idx.size))
        rows[k][:, region_idx] = np.clip(values, 0.0, 1.0)  # cast to float32 on assignment
    return out
