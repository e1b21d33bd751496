from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from faceattr.data.synthetic import (
    IMAGE_SIZE_PX,
    IdentityParams,
    SyntheticFace,
    identity_params,
    render_face,
    synthetic_batch,
    synthetic_face,
)
from faceattr.rng import numpy_generator

torch.set_num_threads(1)


def test_image_and_mask_types_shapes_and_range() -> None:
    face = synthetic_face(0, 3, 7)
    assert isinstance(face, SyntheticFace)
    assert face.image.dtype == np.float32
    assert face.image.shape == (3, IMAGE_SIZE_PX, IMAGE_SIZE_PX)
    assert face.identity_mask.dtype == np.bool_
    assert face.identity_mask.shape == (IMAGE_SIZE_PX, IMAGE_SIZE_PX)
    assert float(face.image.min()) >= 0.0
    assert float(face.image.max()) <= 1.0
    assert np.isfinite(face.image).all()


def test_same_arguments_give_bit_identical_arrays() -> None:
    first = synthetic_face(5, 12, 3)
    identity_params.cache_clear()
    second = synthetic_face(5, 12, 3)
    assert first.image.tobytes() == second.image.tobytes()
    np.testing.assert_array_equal(first.identity_mask, second.identity_mask)


def test_different_view_or_world_differs() -> None:
    base = synthetic_face(0, 12, 3)
    assert not np.array_equal(base.image, synthetic_face(0, 12, 4).image)
    assert not np.array_equal(base.image, synthetic_face(1, 12, 3).image)


def test_identity_params_are_keyed_and_distinct() -> None:
    params = identity_params(0, 42)
    assert isinstance(params, IdentityParams)
    assert params == identity_params(0, 42)
    assert params != identity_params(0, 43)
    assert params != identity_params(1, 42)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        params.eye_tilt = 0.0  # type: ignore[misc]


def test_render_face_draws_nuisance_only_from_given_rng() -> None:
    params = identity_params(0, 9)
    a = render_face(params, rng=np.random.default_rng(123))
    b = render_face(params, rng=np.random.default_rng(123))
    c = render_face(params, rng=np.random.default_rng(124))
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    # the convenience function is render_face with the documented keyed stream
    keyed = render_face(params, rng=numpy_generator(0, "synthetic", "view", 9, 2))
    np.testing.assert_array_equal(keyed.image, synthetic_face(0, 9, 2).image)


def test_mask_coverage_is_about_ten_percent() -> None:
    coverage = np.array([synthetic_face(0, 1000 + i, i).identity_mask.mean() for i in range(48)])
    assert coverage.min() >= 0.07
    assert coverage.max() <= 0.13
    assert 0.09 <= coverage.mean() <= 0.11


def test_identities_differ_only_inside_union_of_masks() -> None:
    # the same nuisance draw for two identities: pixels outside both masks are bit-identical
    for k in range(6):
        a = render_face(identity_params(0, 2 * k), rng=numpy_generator(0, "test", k))
        b = render_face(identity_params(0, 2 * k + 1), rng=numpy_generator(0, "test", k))
        union = a.identity_mask | b.identity_mask
        differs = (a.image != b.image).any(axis=0)
        assert differs.any()
        assert not (differs & ~union).any()
        # and the identities do change the pixels inside the masks
        assert differs[union].mean() > 0.5


def test_mask_moves_with_the_face() -> None:
    # same identity, different views: masks differ (shift/scale) but keep their area range
    masks = [synthetic_face(0, 77, view).identity_mask for view in range(6)]
    assert any(not np.array_equal(masks[0], m) for m in masks[1:])
    centroids = np.array([np.argwhere(m).mean(axis=0) for m in masks])
    assert np.ptp(centroids, axis=0).max() > 1.0
    assert np.abs(centroids - (IMAGE_SIZE_PX - 1) / 2).max() < 8.0


def test_mask_features_are_separate_blobs() -> None:
    # eyes, nose and mouth: four connected regions, or fewer only where two touch
    counts = [ndimage.label(synthetic_face(0, i, 0).identity_mask)[1] for i in range(20)]
    assert max(counts) == 4
    assert min(counts) >= 3


def test_nuisance_varies_outside_the_mask() -> None:
    a = synthetic_face(0, 5, 0)
    b = synthetic_face(0, 5, 1)
    outside = ~(a.identity_mask | b.identity_mask)
    assert np.abs(a.image - b.image)[:, outside].mean() > 0.05


def test_synthetic_batch_stacks_synthetic_face() -> None:
    images, masks = synthetic_batch(0, [1, 2, 1], [0, 0, 1])
    assert images.shape == (3, 3, IMAGE_SIZE_PX, IMAGE_SIZE_PX)
    assert masks.shape == (3, IMAGE_SIZE_PX, IMAGE_SIZE_PX)
    np.testing.assert_array_equal(images[2], synthetic_face(0, 1, 1).image)
    np.testing.assert_array_equal(masks[1], synthetic_face(0, 2, 0).identity_mask)
    with pytest.raises(ValueError, match="equal length"):
        synthetic_batch(0, [1, 2], [0])


def test_bad_seed_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        synthetic_face(-1, 0, 0)
