from __future__ import annotations

import numpy as np
import pytest
import torch

from faceattr.rng import numpy_generator, torch_generator


def test_same_key_same_stream() -> None:
    a = numpy_generator(7, "pair", "model", "method", "high", 3).random(5)
    b = numpy_generator(7, "pair", "model", "method", "high", 3).random(5)
    np.testing.assert_array_equal(a, b)


def test_streams_do_not_depend_on_draw_order() -> None:
    # drawing another stream first must not change this one (PITFALLS.md #14)
    first = numpy_generator(1, "p1", "m", "saliency").random(4)
    numpy_generator(1, "p1", "m", "random").random(1000)
    again = numpy_generator(1, "p1", "m", "saliency").random(4)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("other", [(2, "p", "k"), (1, "q", "k"), (1, "p", "k2"), (1, "p", 0)])
def test_different_keys_differ(other: tuple[int, str, str | int]) -> None:
    base = numpy_generator(1, "p", "k").random(8)
    assert not np.array_equal(base, numpy_generator(*other).random(8))


def test_key_types_are_not_confused() -> None:
    # "1" and 1 are different keys
    assert not np.array_equal(numpy_generator(0, "1").random(4), numpy_generator(0, 1).random(4))


def test_torch_generator_is_keyed() -> None:
    a = torch.rand(4, generator=torch_generator(3, "x"))
    b = torch.rand(4, generator=torch_generator(3, "x"))
    c = torch.rand(4, generator=torch_generator(3, "y"))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed_is_refused(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        numpy_generator(seed, "x")  # type: ignore[arg-type]


def test_bad_key_type_is_refused() -> None:
    with pytest.raises(TypeError, match="stream keys must be str or int"):
        numpy_generator(0, 1.5)  # type: ignore[arg-type]
