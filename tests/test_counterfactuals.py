from __future__ import annotations

import numpy as np
import pytest

from faceattr.falsification.counterfactuals import counterfactuals
from faceattr.rng import numpy_generator


def _image() -> np.ndarray:
    return numpy_generator(0, "image").random((3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("fill", ["mean", "zero"])
def test_only_the_region_changes(fill: str) -> None:
    image = _image()
    region = np.array([0, 9, 63])
    rngs = [numpy_generator(1, "k", k) for k in range(3)]
    out = counterfactuals(image, region, fill=fill, perturbation_sigma=0.02, rngs=rngs)  # type: ignore[arg-type]
    assert out.shape == (3, 3, 8, 8)
    assert out.dtype == np.float32
    outside = np.setdiff1d(np.arange(64), region)
    flat = out.reshape(3, 3, 64)
    np.testing.assert_array_equal(flat[:, :, outside], np.broadcast_to(
        image.reshape(3, 64)[:, outside], (3, 3, outside.size)))
    assert (flat >= 0).all()
    assert (flat <= 1).all()
    expected = image.reshape(3, -1).mean(axis=1) if fill == "mean" else np.zeros(3)
    np.testing.assert_allclose(flat[:, :, region].mean(axis=(0, 2)), expected, atol=0.05)


def test_each_draw_has_its_own_stream() -> None:
    image, region = _image(), np.arange(10)
    both = counterfactuals(image, region, fill="mean", perturbation_sigma=0.1,
                           rngs=[numpy_generator(1, "k", 0), numpy_generator(1, "k", 1)])
    second_alone = counterfactuals(image, region, fill="mean", perturbation_sigma=0.1,
                                   rngs=[numpy_generator(1, "k", 1)])
    np.testing.assert_array_equal(both[1], second_alone[0])
    assert not np.array_equal(both[0], both[1])


def test_unknown_fill_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fill 'blur'"):
        counterfactuals(_image(), np.arange(3), fill="blur", perturbation_sigma=0.0,  # type: ignore[arg-type]
                        rngs=[numpy_generator(0, "x")])
