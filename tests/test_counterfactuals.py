from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from faceattr.falsification.counterfactuals import FILL_STRATEGIES, counterfactuals
from faceattr.rng import numpy_generator

REGION = np.array([0, 9, 27, 63])


def _image() -> np.ndarray:
    return numpy_generator(0, "image").random((3, 8, 8)).astype(np.float32)


def _draws(fill: str, sigma: float, n: int = 3) -> np.ndarray:
    rngs = [numpy_generator(1, "k", k) for k in range(n)]
    return counterfactuals(_image(), REGION, fill=fill, perturbation_sigma=sigma,  # type: ignore[arg-type]
                           rngs=rngs, blur_sigma_px=1.5)


@pytest.mark.parametrize("fill", FILL_STRATEGIES)
def test_only_the_region_changes(fill: str) -> None:
    image, out = _image(), _draws(fill, 0.02)
    assert out.shape == (3, 3, 8, 8)
    assert out.dtype == np.float32
    outside = np.setdiff1d(np.arange(64), REGION)
    flat = out.reshape(3, 3, 64)
    np.testing.assert_array_equal(flat[:, :, outside], np.broadcast_to(
        image.reshape(3, 64)[:, outside], (3, 3, outside.size)))
    assert flat.min() >= 0
    assert flat.max() <= 1


@pytest.mark.parametrize(("fill", "expected"), [
    ("zero", lambda img: np.zeros((3, REGION.size))),
    ("mean", lambda img: np.repeat(img.reshape(3, -1).mean(axis=1)[:, None], REGION.size, 1)),
    ("blur", lambda img: np.stack([gaussian_filter(c.astype(np.float64), 1.5, mode="reflect")
                                   for c in img]).reshape(3, -1)[:, REGION]),
])
def test_deterministic_fills_without_perturbation(fill: str, expected) -> None:  # type: ignore[no-untyped-def]
    out = _draws(fill, 0.0).reshape(3, 3, 64)[:, :, REGION]
    for draw in out:
        np.testing.assert_allclose(draw, expected(_image()), rtol=0, atol=1e-6)


def test_noise_fill_is_uniform_and_differs_per_draw() -> None:
    out = _draws("noise", 0.0, n=200).reshape(200, 3, 64)[:, :, REGION]
    assert abs(float(out.mean()) - 0.5) < 0.03  # 2400 U(0,1) values: SD of mean ~0.006
    assert not np.array_equal(out[0], out[1])


def test_perturbation_adds_noise_of_the_declared_size() -> None:
    out = _draws("mean", 0.05, n=100).reshape(100, 3, 64)[:, :, REGION]
    # 100 draws x 4 px per channel: the SD estimate is within ~10% of 0.05
    assert float(out.std(axis=(0, 2)).mean()) == pytest.approx(0.05, rel=0.2)


def test_each_draw_has_its_own_stream() -> None:
    image, region = _image(), np.arange(10)
    both = counterfactuals(image, region, fill="mean", perturbation_sigma=0.1,
                           rngs=[numpy_generator(1, "k", 0), numpy_generator(1, "k", 1)])
    second_alone = counterfactuals(image, region, fill="mean", perturbation_sigma=0.1,
                                   rngs=[numpy_generator(1, "k", 1)])
    np.testing.assert_array_equal(both[1], second_alone[0])
    assert not np.array_equal(both[0], both[1])


def test_unknown_fill_and_blur_without_sigma_are_refused() -> None:
    with pytest.raises(ValueError, match=r"fill = 'inpaint' is not registered; known: blur, "):
        counterfactuals(_image(), REGION, fill="inpaint", perturbation_sigma=0.0,
                        rngs=[numpy_generator(0, "x")])
    with pytest.raises(ValueError, match="blur fill needs blur_sigma_px > 0"):
        counterfactuals(_image(), REGION, fill="blur", perturbation_sigma=0.0,
                        rngs=[numpy_generator(0, "x")])


def _ramp(height: int = 12, width: int = 12) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([0.02 * xs + 0.03 * ys + 0.1, 0.5 - 0.01 * xs + 0.02 * ys,
                     0.04 * ys + 0.05]).astype(np.float32)


def test_nli_fill_continues_a_linear_image_exactly() -> None:
    """A linear image is harmonic under ROAD's symmetric neighbour weights: an interior hole is
    filled with the values it had (and the old values never enter the solve)."""
    image = _ramp()
    hole = np.array([y * 12 + x for y in range(3, 8) for x in range(4, 9)])  # 5x5 block
    damaged = image.copy().reshape(3, -1)
    damaged[:, hole] = 0.9  # the fill must not read the removed values
    out = counterfactuals(damaged.reshape(image.shape), hole, fill="nli", perturbation_sigma=0.0,
                          rngs=[numpy_generator(0, "k", 0)])
    np.testing.assert_allclose(out[0].reshape(3, -1)[:, hole], image.reshape(3, -1)[:, hole],
                               atol=1e-5)


def test_nli_fill_of_a_border_region_stays_within_its_neighbours_range() -> None:
    image = _image()
    region = np.array([0, 1, 8, 9, 63])  # corner blocks: fewer neighbours
    out = counterfactuals(image, region, fill="nli", perturbation_sigma=0.0,
                          rngs=[numpy_generator(0, "k", 0)])
    filled = out[0].reshape(3, -1)[:, region]
    assert filled.min() >= image.min() - 1e-6
    assert filled.max() <= image.max() + 1e-6
    assert not np.allclose(filled, image.reshape(3, -1)[:, region])
