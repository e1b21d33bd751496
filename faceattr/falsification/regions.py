"""Area-matched (quantile) regions of a relevance map.

``S_high`` is the top ``q`` fraction of pixels by relevance and ``S_low`` the bottom ``q``
fraction: equal areas by construction, so a sparse map cannot be falsified by region size
alone (PITFALLS.md #12). Ties are broken deterministically by flat pixel index and counted.
A map is *trivial* when it cannot rank pixels: constant, or ties that straddle the boundary
between the two regions (then "high" and "low" would be an arbitrary split of equal values).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ATOL_CONSTANT_MAP", "NonFiniteMapError", "Regions", "TrivialMap", "quantile_regions",
           "region_fingerprint", "threshold_regions"]

#: A map whose range is at most this (after scaling by its max |value|) is constant. float64
#: maps built from float32 gradients carry ~1e-7 relative noise; 1e-12 is far below that.
ATOL_CONSTANT_MAP = 1e-12


class NonFiniteMapError(ValueError):
    """The relevance map contains NaN or infinite values."""


@dataclass(frozen=True, slots=True, eq=False)
class Regions:
    """Flat pixel indices of the two regions and the tie-break count."""

    high_idx: NDArray[np.intp]
    low_idx: NDArray[np.intp]
    n_boundary_ties: int


def region_fingerprint(regions: Regions) -> str:
    """SHA-256 of the two pixel index sets the test perturbs (``S_high`` then ``S_low``).

    Two maps with one fingerprint are one map to the falsification test, whatever their
    bytes: a positive rescaling (or any strictly increasing transform) of a map selects the
    same regions, exact ties included (they are broken by flat pixel index either way); only
    values that float rounding moves across each other at a region boundary can differ
    (PITFALLS.md #20, the ``distinct_maps`` claim). The sets are hashed sorted, as little-endian
    int64, with a separator, so the order of ``high`` and ``low`` matters (an inverted map's
    regions are swapped, not equal).
    """
    digest = hashlib.sha256()
    for name, idx in ((b"high", regions.high_idx), (b"low", regions.low_idx)):
        digest.update(name + b":")
        digest.update(np.sort(np.asarray(idx, dtype="<i8")).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class TrivialMap:
    """Why a map cannot be split into the requested regions."""

    reason: str


def _checked_flat(relevance: NDArray[np.float64]) -> NDArray[np.float64]:
    flat = np.asarray(relevance, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise NonFiniteMapError(f"{int((~np.isfinite(flat)).sum())} non-finite values in the map")
    return flat


def _is_constant(flat: NDArray[np.float64]) -> bool:
    scale = max(float(np.abs(flat).max()), 1.0)
    return float(flat.max() - flat.min()) <= ATOL_CONSTANT_MAP * scale


def region_size_px(n_pixels: int, q_frac: float) -> int:
    """Pixels per region: ``round(q * n_pixels)``; must leave the two regions disjoint."""
    size = round(q_frac * n_pixels)
    if size < 1 or 2 * size > n_pixels:
        raise ValueError(f"q_frac={q_frac} gives {size} px per region of {n_pixels}; "
                         "need 1 <= size <= n_pixels / 2")
    return size


def quantile_regions(relevance: NDArray[np.float64], q_frac: float) -> Regions | TrivialMap:
    """Split a map (H, W) into its top-q and bottom-q pixel sets.

    Parameters
    ----------
    relevance : ndarray (H, W)
        The relevance map.
    q_frac : float
        Fraction of pixels per region, in (0, 0.5].

    Returns
    -------
    Regions or TrivialMap
    """
    flat = _checked_flat(relevance)
    size = region_size_px(flat.size, q_frac)
    if _is_constant(flat):
        return TrivialMap("constant map: max - min <= atol")
    order = np.argsort(flat, kind="stable")  # ascending; equal values keep index order
    low_idx, high_idx = order[:size], order[-size:]
    high_min, low_max = flat[high_idx].min(), flat[low_idx].max()
    if high_min <= low_max:
        return TrivialMap(f"ties straddle the regions: min(S_high) = {high_min:.6g} <= "
                          f"max(S_low) = {low_max:.6g}")
    ties = int((flat == high_min).sum() - (flat[high_idx] == high_min).sum()
               + (flat == low_max).sum() - (flat[low_idx] == low_max).sum())
    return Regions(high_idx=np.sort(high_idx), low_idx=np.sort(low_idx), n_boundary_ties=ties)


def threshold_regions(relevance: NDArray[np.float64], *, theta_high: float,
                      theta_low: float) -> Regions | TrivialMap:
    """The theorem's literal regions: after min-max normalisation to [0, 1],
    ``S_high = {phi > theta_high}`` and ``S_low = {phi < theta_low}``.

    Region areas are whatever the map makes them: a sparse map gives a tiny ``S_high`` and a
    huge ``S_low``, which confounds the verdict with area (PITFALLS.md #12) — the engine
    records the ratio and flags it. A region left empty makes the map trivial
    (condition 1 of Theorem 3.5).
    """
    if not 0.0 <= theta_low <= theta_high <= 1.0:
        raise ValueError(f"need 0 <= theta_low <= theta_high <= 1, got {theta_low}, {theta_high}")
    flat = _checked_flat(relevance)
    if _is_constant(flat):
        return TrivialMap("constant map: max - min <= atol")
    normalised = (flat - flat.min()) / (flat.max() - flat.min())
    high_idx = np.flatnonzero(normalised > theta_high)
    low_idx = np.flatnonzero(normalised < theta_low)
    if high_idx.size == 0 or low_idx.size == 0:
        return TrivialMap(f"empty region: |S_high| = {high_idx.size}, |S_low| = {low_idx.size}")
    return Regions(high_idx=high_idx, low_idx=low_idx, n_boundary_ties=0)
