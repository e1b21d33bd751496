from __future__ import annotations

import numpy as np
import pytest

from faceattr.randomisation.similarity import (
    SSIM_C1,
    SSIM_C2,
    SSIM_WINDOW_PX,
    gaussian_window,
    map_similarity,
    minmax_normalise,
    spearman_abs,
    ssim,
    ssim_unit,
    topk_intersection,
)
from faceattr.rng import numpy_generator


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    # Wang et al. (2004) written out window by window: Gaussian-weighted local statistics of
    # every complete 11x11 window, the SSIM index per window, then the mean
    window = gaussian_window()
    size = SSIM_WINDOW_PX
    indices = []
    for row in range(x.shape[0] - size + 1):
        for col in range(x.shape[1] - size + 1):
            px, py = x[row:row + size, col:col + size], y[row:row + size, col:col + size]
            mu_x, mu_y = (window * px).sum(), (window * py).sum()
            var_x = (window * (px - mu_x) ** 2).sum()
            var_y = (window * (py - mu_y) ** 2).sum()
            cov = (window * (px - mu_x) * (py - mu_y)).sum()
            indices.append((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
                           / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    return float(np.mean(indices))


def _smooth_map(seed: int, shape: tuple[int, int] = (24, 20)) -> np.ndarray:
    rng = numpy_generator(seed, "test_similarity")
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return np.sin(rows / 3.0) * np.cos(cols / 4.0) + 0.3 * rng.random(shape)


def test_gaussian_window_is_normalised_and_symmetric():
    window = gaussian_window()
    assert window.shape == (11, 11)
    assert window.sum() == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_array_equal(window, window.T)
    np.testing.assert_array_equal(window, window[::-1, ::-1])
    assert np.unravel_index(np.argmax(window), window.shape) == (5, 5)


def test_ssim_of_identical_maps_is_one():
    phi = _smooth_map(0)
    assert ssim(phi, phi) == pytest.approx(1.0, rel=1e-12)
    # min-max normalisation makes SSIM invariant to a positive affine change of either map
    assert ssim(phi, 3.0 * phi + 2.0) == pytest.approx(1.0, rel=1e-12)


def test_ssim_of_constant_images_has_the_closed_form():
    # both windows constant: the structure term is C2 / C2 = 1 and the luminance term is
    # (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 0.8, 0.2
    expected = (2 * a * b + SSIM_C1) / (a ** 2 + b ** 2 + SSIM_C1)
    observed = ssim_unit(np.full((16, 16), a), np.full((16, 16), b))
    assert observed == pytest.approx(expected, rel=1e-12)
    assert observed == pytest.approx(0.3201 / 0.6801, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_the_window_by_window_reference(seed):
    x, y = minmax_normalise(_smooth_map(seed)), minmax_normalise(_smooth_map(seed + 10))
    assert ssim_unit(x, y) == pytest.approx(_ssim_reference(x, y), rel=1e-10, abs=1e-12)


def test_ssim_of_a_map_and_its_negative_is_near_minus_one():
    # a checkerboard normalises to {0, 1}; its negative to the complementary checkerboard:
    # every window has the same mean (~0.5) and perfectly anti-correlated structure
    rows, cols = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    board = ((rows + cols) % 2).astype(np.float64)
    observed = ssim(board, -board)
    assert observed == pytest.approx(_ssim_reference(board, 1.0 - board), rel=1e-10)
    assert observed < -0.99


def test_ssim_rejects_maps_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_ssim_rejects_mismatched_or_non_finite_maps():
    with pytest.raises(ValueError, match="one shape"):
        ssim(np.zeros((16, 16)), np.zeros((16, 15)))
    bad = np.zeros((16, 16))
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        ssim(bad, np.zeros((16, 16)))


def test_spearman_abs_hand_computed():
    # ranks (1, 2, 3, 4) vs (1, 3, 2, 4): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 3.0], [2.0, 4.0]])
    assert spearman_abs(a, b) == pytest.approx(0.8, rel=1e-12)


def test_spearman_abs_identical_negated_and_reversed():
    phi = _smooth_map(3)
    assert spearman_abs(phi, phi) == pytest.approx(1.0, rel=1e-12)
    # absolute values: a sign flip is not a change of ranking
    assert spearman_abs(phi, -phi) == pytest.approx(1.0, rel=1e-12)
    ramp = np.arange(1.0, 17.0).reshape(4, 4)
    assert spearman_abs(ramp, 17.0 - ramp) == pytest.approx(-1.0, rel=1e-12)


def test_spearman_abs_of_a_constant_map_is_zero_without_warning():
    # filterwarnings=error: scipy would warn on constant input, so it must not be called
    phi = _smooth_map(4)
    assert spearman_abs(phi, np.full_like(phi, 2.0)) == 0.0
    assert spearman_abs(np.zeros_like(phi), np.zeros_like(phi)) == 0.0


def test_topk_hand_computed():
    a = np.array([[4.0, 3.0], [2.0, 1.0]])
    assert topk_intersection(a, a, frac=0.5) == 1.0
    assert topk_intersection(a, np.array([[1.0, 2.0], [3.0, 4.0]]), frac=0.5) == 0.0
    assert topk_intersection(a, np.array([[4.0, 1.0], [3.0, 2.0]]), frac=0.5) == 0.5
    # absolute values
    assert topk_intersection(a, -a, frac=0.5) == 1.0


def test_topk_resolves_ties_in_expectation():
    # a: pixel 0 above, pixels 1 and 2 tied at the cut (each in the top-2 with prob 1/2);
    # b: pixel 3 above, pixels 1 and 2 tied: expected overlap (1/4 + 1/4) / 2 = 1/4
    a = np.array([[2.0, 1.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 2.0]])
    assert topk_intersection(a, b, frac=0.5) == pytest.approx(0.25, rel=1e-12)
    # two constant maps overlap at chance, k / n
    const = np.ones((10, 10))
    assert topk_intersection(const, const, frac=0.1) == pytest.approx(0.1, rel=1e-12)


def test_topk_rejects_bad_fractions():
    phi = _smooth_map(5)
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\)"):
        topk_intersection(phi, phi, frac=10.0)
    with pytest.raises(ValueError, match="selects every one"):
        topk_intersection(np.ones((1, 2)), np.ones((1, 2)), frac=0.9)


def test_map_similarity_dispatches_and_rejects_unknown_metrics():
    phi = _smooth_map(6)
    for metric in ("spearman_abs", "ssim", "topk"):
        assert map_similarity(metric, phi, phi, topk_frac=0.1) == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError, match="unknown similarity metric 'pearson'"):
        map_similarity("pearson", phi, phi, topk_frac=0.1)  # type: ignore[arg-type]
