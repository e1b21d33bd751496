"""Similarity of two relevance maps: rank correlation, SSIM and top-k intersection.

These are the three similarities Adebayo et al. (2018) report for the model-parameter
randomisation test (Spearman rank correlation with and without absolute values, SSIM, and in
later work the overlap of the most relevant pixels). Each function takes two (H, W) maps of one
pair and returns a finite similarity that is 1 for identical (rankable) maps. Ties are resolved
in expectation over uniformly random tie-breaking, so every similarity is defined, never NaN:
a constant map has rank correlation 0 with any map and the chance top-k overlap.

References
----------
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.

Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image Quality Assessment: From Error
Visibility to Structural Similarity", IEEE Transactions on Image Processing 13(4), 2004.

A. Hedström et al., "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.signal import convolve2d
from scipy.stats import spearmanr

__all__ = ["METRICS", "SSIM_C1", "SSIM_C2", "SSIM_SIGMA_PX", "SSIM_WINDOW_PX", "TIE_ATOL",
           "Metric", "gaussian_window", "is_constant_map", "map_similarity", "minmax_normalise",
           "spearman_abs", "ssim", "ssim_unit", "topk_intersection"]

Metric = Literal["spearman_abs", "ssim", "topk"]
METRICS: Final[tuple[Metric, ...]] = ("spearman_abs", "ssim", "topk")
"""The similarity metrics, in the order results list them."""

TIE_ATOL: Final = 1e-12
"""Values closer than this (relative to their magnitude, at least 1) are ties: a map whose
range is within it is constant and cannot be ranked."""

SSIM_WINDOW_PX: Final = 11
SSIM_SIGMA_PX: Final = 1.5
SSIM_C1: Final = (0.01 * 1.0) ** 2
SSIM_C2: Final = (0.03 * 1.0) ** 2
"""Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5 px, ``C1 = (K1 L)^2`` and
``C2 = (K2 L)^2`` with ``K1 = 0.01``, ``K2 = 0.03`` and dynamic range ``L = 1`` (maps are
min-max normalised to [0, 1])."""


def _check_pair(map_a: NDArray[np.float64], map_b: NDArray[np.float64]) -> None:
    if map_a.ndim != 2 or map_a.shape != map_b.shape:
        raise ValueError(f"expected two (H, W) maps of one shape, got {map_a.shape} and "
                         f"{map_b.shape}")
    if not (np.all(np.isfinite(map_a)) and np.all(np.isfinite(map_b))):
        raise ValueError("maps must be finite")


def is_constant_map(values: NDArray[np.float64]) -> bool:
    """Whether a map's values are all tied (range within :data:`TIE_ATOL`): it ranks nothing."""
    low, high = float(values.min()), float(values.max())
    return high - low <= TIE_ATOL * max(1.0, abs(low), abs(high))


def spearman_abs(map_a: NDArray[np.float64], map_b: NDArray[np.float64]) -> float:
    """Spearman rank correlation of the absolute values of two maps.

    Adebayo et al. (2018) compare ``|phi|`` because the sign of many methods flips under
    randomisation while the important pixels stay important.

    Parameters
    ----------
    map_a, map_b : ndarray of float64
        (H, W) maps.

    Returns
    -------
    float
        The correlation in [-1, 1]. When either ``|phi|`` is constant it ranks no pixel and the
        sample correlation is 0/0; the value is then 0, the expected rank correlation under
        uniformly random tie-breaking (as for ties in :func:`topk_intersection`). Whether the
        *original* map was constant is recorded separately: such a map is untestable.
    """
    _check_pair(map_a, map_b)
    abs_a, abs_b = np.abs(map_a).ravel(), np.abs(map_b).ravel()
    if is_constant_map(abs_a) or is_constant_map(abs_b):
        return 0.0
    rho = float(spearmanr(abs_a, abs_b).statistic)
    return min(1.0, max(-1.0, rho))


def minmax_normalise(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map values linearly onto [0, 1]; a constant map becomes all zeros."""
    low, high = float(values.min()), float(values.max())
    if is_constant_map(values):
        return np.zeros_like(values, dtype=np.float64)
    return (values.astype(np.float64) - low) / (high - low)


def gaussian_window(size_px: int = SSIM_WINDOW_PX,
                    sigma_px: float = SSIM_SIGMA_PX) -> NDArray[np.float64]:
    """The normalised (size, size) Gaussian window of Wang et al. (2004)."""
    offsets = np.arange(size_px, dtype=np.float64) - (size_px - 1) / 2.0
    profile = np.exp(-offsets ** 2 / (2.0 * sigma_px ** 2))
    window = np.outer(profile, profile)
    normalised: NDArray[np.float64] = window / window.sum()
    return normalised


def ssim_unit(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Mean SSIM of two images with values in [0, 1] (dynamic range 1).

    Local statistics are Gaussian-weighted over every *complete* 11x11 window ("valid"
    filtering, as in Wang et al.'s reference implementation); the SSIM index of each window is
    ``(2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 +
    C2))`` and the result is its mean over windows.

    Parameters
    ----------
    x, y : ndarray of float64
        (H, W) images, H and W at least :data:`SSIM_WINDOW_PX`.

    Returns
    -------
    float
        The mean SSIM, in [-1, 1].
    """
    _check_pair(x, y)
    if min(x.shape) < SSIM_WINDOW_PX:
        raise ValueError(f"SSIM needs maps of at least {SSIM_WINDOW_PX}x{SSIM_WINDOW_PX} px, "
                         f"got {x.shape}")
    window = gaussian_window()

    def local_mean(image: NDArray[np.float64]) -> NDArray[np.float64]:
        filtered: NDArray[np.float64] = convolve2d(image, window, mode="valid")
        return filtered

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x ** 2
    var_y = local_mean(y * y) - mu_y ** 2
    cov_xy = local_mean(x * y) - mu_x * mu_y
    index = ((2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * cov_xy + SSIM_C2)
             / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    return min(1.0, max(-1.0, float(index.mean())))


def ssim(map_a: NDArray[np.float64], map_b: NDArray[np.float64]) -> float:
    """SSIM (Wang et al. 2004) of two signed maps after min-max normalisation to [0, 1].

    Parameters
    ----------
    map_a, map_b : ndarray of float64
        (H, W) maps.

    Returns
    -------
    float
        :func:`ssim_unit` of the normalised maps (a constant map normalises to zeros, so SSIM
        is always defined).
    """
    _check_pair(map_a, map_b)
    return ssim_unit(minmax_normalise(map_a), minmax_normalise(map_b))


def _top_weights(values: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    # membership of each pixel in the top-k set under uniformly random tie-breaking: 1 above
    # the k-th largest value, (k - n_above) / n_tied for pixels tied with it, 0 below
    threshold = float(np.sort(values)[::-1][k - 1])
    tied = np.abs(values - threshold) <= TIE_ATOL * max(1.0, abs(threshold))
    above = (values > threshold) & ~tied
    n_above, n_tied = int(above.sum()), int(tied.sum())
    weights = above.astype(np.float64)
    weights[tied] = (k - n_above) / n_tied
    return weights


def topk_intersection(map_a: NDArray[np.float64], map_b: NDArray[np.float64], *,
                      frac: float) -> float:
    """Share of the top-``frac`` pixels by ``|phi|`` that two maps have in common.

    Where tied values straddle the cut (e.g. the zero floor of a rectified Grad-CAM map, or a
    constant map), the top set is not unique; the overlap is then its expectation under
    uniformly random tie-breaking, so it is deterministic and always defined: a tied pixel
    belongs to the top set with probability ``(k - n_above) / n_tied``.

    Parameters
    ----------
    map_a, map_b : ndarray of float64
        (H, W) maps.
    frac : float
        Fraction of pixels in each top set, in (0, 1); ``k = max(1, round(frac * H * W))``.

    Returns
    -------
    float
        The expected ``|top_k(a) & top_k(b)| / k``, in [0, 1] (1 for two maps with the same
        untied top set; ``k / (H W)`` for two constant maps, the chance overlap).
    """
    _check_pair(map_a, map_b)
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must be a fraction in (0, 1), got {frac!r}")
    n_pixels = map_a.size
    k = max(1, round(frac * n_pixels))
    if k >= n_pixels:
        raise ValueError(f"frac {frac!r} selects every one of {n_pixels} pixels")
    weights_a = _top_weights(np.abs(map_a).ravel().astype(np.float64), k)
    weights_b = _top_weights(np.abs(map_b).ravel().astype(np.float64), k)
    overlap = float(np.dot(weights_a, weights_b)) / k
    return min(1.0, max(0.0, overlap))


def map_similarity(metric: Metric, map_a: NDArray[np.float64], map_b: NDArray[np.float64], *,
                   topk_frac: float) -> float:
    """Dispatch to one metric of :data:`METRICS` (``topk_frac`` is used by ``"topk"`` only)."""
    if metric == "spearman_abs":
        return spearman_abs(map_a, map_b)
    if metric == "ssim":
        return ssim(map_a, map_b)
    if metric == "topk":
        return topk_intersection(map_a, map_b, frac=topk_frac)
    raise ValueError(f"unknown similarity metric {metric!r}; known: {', '.join(METRICS)}")
