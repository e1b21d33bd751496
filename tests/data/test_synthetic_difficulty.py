"""Difficulty levels of the synthetic world: level 0 unchanged, invariants at every level."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from faceattr.config import ProtocolError
from faceattr.data.sources import build_source, parse_source
from faceattr.data.synthetic import (
    DIFFICULTY_LEVELS,
    IMAGE_SIZE_PX,
    check_difficulty,
    identity_params,
    render_face,
    synthetic_batch,
    synthetic_face,
)
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.rng import numpy_generator

LEVELS = list(DIFFICULTY_LEVELS)

# Computed from the code before difficulty levels existed (level 0 must stay bit-identical).
LEVEL0_FACES_SHA256 = "87bf212ede1e66960f174a921ec2605cdc9c02fb97ec10e103881df2d5c75c5b"
LEVEL0_BATCH_SHA256 = "31d16cdbf7eb8e80e0c21f98cfa2750b412520efea17bd9c6db0230f9b3927c5"
LEVEL0_RENDER_SHA256 = "cca04cde6b3c10bdda604a6d8e7296ae1571ac0855c2ca14f9f1fb12b5e15403"
LEVEL0_NEXT_DRAW = 0.0008118030910648777  # rng.random() after render_face(..., default_rng(2024))
LEVEL0_PAIR_IDS = ["synthetic-3e7487b3d66b", "synthetic-06cde5f49b55", "synthetic-f40d6fe5d369",
                   "synthetic-af874f42896f", "synthetic-dd180afdaa31", "synthetic-a3aa98b2260a"]


class RecordingGenerator(np.random.Generator):
    """A generator that logs every draw call (method and size) made on it."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(seed))
        self.log: list[tuple[str, Any]] = []

    def uniform(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.log.append(("uniform", kwargs.get("size")))
        return super().uniform(*args, **kwargs)

    def standard_normal(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.log.append(("standard_normal", kwargs.get("size")))
        return super().standard_normal(*args, **kwargs)


# --- (d) level 0 is bit-identical to the world before difficulty levels ----------------------

def test_level0_faces_are_bit_identical_to_before() -> None:
    digest = hashlib.sha256()
    for world in (0, 3):
        for identity in (0, 1, 7, 199, 1000, 1234):
            for view in (0, 1, 5):
                face = synthetic_face(world, identity, view)
                digest.update(face.image.tobytes())
                digest.update(face.identity_mask.tobytes())
                explicit = synthetic_face(world, identity, view, difficulty=0)
                assert explicit.image.tobytes() == face.image.tobytes()
    assert digest.hexdigest() == LEVEL0_FACES_SHA256


def test_level0_batch_render_and_draw_count_are_unchanged() -> None:
    images, masks = synthetic_batch(0, [1, 2, 3, 1000], [0, 4, 9, 2], difficulty=0)
    assert hashlib.sha256(images.tobytes() + masks.tobytes()).hexdigest() == LEVEL0_BATCH_SHA256
    rng = np.random.default_rng(2024)
    face = render_face(identity_params(0, 42), rng=rng)
    digest = hashlib.sha256(face.image.tobytes() + face.identity_mask.tobytes()).hexdigest()
    assert digest == LEVEL0_RENDER_SHA256
    assert rng.random() == LEVEL0_NEXT_DRAW  # level 0 draws exactly as many values as before


def test_level0_pair_ids_are_unchanged_and_other_levels_differ() -> None:
    def source(difficulty: int) -> SyntheticPairSource:
        return SyntheticPairSource(world_seed=0, n_pairs=6, genuine_fraction=0.5,
                                   first_identity=1000, sampling_seed=0, difficulty=difficulty)

    level0 = source(0).pairs()
    assert [p.pair_id for p in level0] == LEVEL0_PAIR_IDS
    ids = {p.pair_id for p in level0}
    for difficulty in (1, 2):
        pairs = source(difficulty).pairs()
        assert not ids & {p.pair_id for p in pairs}
        ids |= {p.pair_id for p in pairs}
        # the same identities and views are paired at every level
        assert [(p.image_a, p.image_b, p.is_genuine) for p in pairs] == \
            [(p.image_a, p.image_b, p.is_genuine) for p in level0]
        loaded = source(difficulty).load_image(pairs[0].image_a)
        face = synthetic_face(0, int(pairs[0].identity_a), 0, difficulty)
        assert loaded.image.tobytes() == face.image.tobytes()
        np.testing.assert_array_equal(loaded.identity_mask, face.identity_mask)


# --- (a) nuisance draws: fixed order, never identity-dependent, extras after level 0's --------

@pytest.mark.parametrize("difficulty", LEVELS)
def test_draws_do_not_depend_on_identity(difficulty: int) -> None:
    logs, states = [], []
    for identity in (0, 5, 1003):
        rng = RecordingGenerator(11)
        render_face(identity_params(0, identity), rng=rng, difficulty=difficulty)
        logs.append(rng.log)
        states.append(rng.bit_generator.state)
    assert logs[0] == logs[1] == logs[2]
    assert states[0] == states[1] == states[2]


def test_extra_draws_come_after_level0_draws() -> None:
    logs = {}
    for difficulty in LEVELS:
        rng = RecordingGenerator(3)
        render_face(identity_params(0, 8), rng=rng, difficulty=difficulty)
        logs[difficulty] = rng.log
    assert logs[0][-1] == ("standard_normal", (3, IMAGE_SIZE_PX, IMAGE_SIZE_PX))
    assert logs[1] == logs[2]  # levels 1 and 2 share their draws; only the strengths differ
    assert len(logs[1]) > len(logs[0])
    assert logs[1][:len(logs[0])] == logs[0]


# --- (b) identities differ only inside the union of their masks --------------------------------

@settings(max_examples=12, deadline=None)
@given(difficulty=st.sampled_from(LEVELS), ident_a=st.integers(0, 5000),
       ident_b=st.integers(0, 5000), stream=st.integers(0, 2**32 - 1))
def test_identities_differ_only_inside_union_of_masks(difficulty: int, ident_a: int,
                                                       ident_b: int, stream: int) -> None:
    a = render_face(identity_params(0, ident_a), rng=numpy_generator(0, "test", stream),
                    difficulty=difficulty)
    b = render_face(identity_params(0, ident_b), rng=numpy_generator(0, "test", stream),
                    difficulty=difficulty)
    union = a.identity_mask | b.identity_mask
    differs = (a.image != b.image).any(axis=0)
    assert not (differs & ~union).any()
    if ident_a != ident_b:
        assert differs[union].mean() > 0.5


@pytest.mark.parametrize("difficulty", LEVELS)
def test_mask_pixels_depend_on_identity(difficulty: int) -> None:
    # the same identity with the same nuisance: bit-identical; other identities change the mask
    for k in range(4):
        first = render_face(identity_params(0, k), rng=numpy_generator(0, "same", k),
                            difficulty=difficulty)
        again = render_face(identity_params(0, k), rng=numpy_generator(0, "same", k),
                            difficulty=difficulty)
        assert first.image.tobytes() == again.image.tobytes()
        other = render_face(identity_params(0, k + 100), rng=numpy_generator(0, "same", k),
                            difficulty=difficulty)
        differs = (first.image != other.image).any(axis=0)
        assert differs[first.identity_mask].mean() > 0.5


# --- (c) mask coverage --------------------------------------------------------------------------

@pytest.mark.parametrize("difficulty", LEVELS)
def test_mask_coverage_is_about_ten_percent(difficulty: int) -> None:
    coverage = np.array([synthetic_face(0, 1000 + i, i, difficulty).identity_mask.mean()
                         for i in range(48)])
    assert coverage.min() >= 0.07
    assert coverage.max() <= 0.13
    assert 0.09 <= coverage.mean() <= 0.11


@pytest.mark.parametrize("difficulty", LEVELS)
def test_mask_features_are_separate_blobs(difficulty: int) -> None:
    counts = [ndimage.label(synthetic_face(0, i, 0, difficulty).identity_mask)[1]
              for i in range(12)]
    assert max(counts) == 4
    assert min(counts) >= 3


# --- what the levels add ------------------------------------------------------------------------

@pytest.mark.parametrize("difficulty", LEVELS)
def test_types_range_and_determinism(difficulty: int) -> None:
    face = synthetic_face(2, 17, 4, difficulty)
    assert face.image.dtype == np.float32
    assert face.image.shape == (3, IMAGE_SIZE_PX, IMAGE_SIZE_PX)
    assert 0.0 <= float(face.image.min()) <= float(face.image.max()) <= 1.0
    assert face.image.tobytes() == synthetic_face(2, 17, 4, difficulty).image.tobytes()
    images, masks = synthetic_batch(2, [17], [4], difficulty)
    assert images[0].tobytes() == face.image.tobytes()
    np.testing.assert_array_equal(masks[0], face.identity_mask)


def test_levels_add_structure_outside_the_mask() -> None:
    # same view at levels 0/1/2: the level-0 nuisance is shared, distractors come on top
    changed = {1: [], 2: []}
    for view in range(24):
        base = synthetic_face(0, 1000, view, 0)
        for difficulty in (1, 2):
            face = synthetic_face(0, 1000, view, difficulty)
            outside = ~(base.identity_mask | face.identity_mask)
            changed[difficulty].append(np.abs(face.image - base.image)[:, outside].mean())
    assert 0.02 < np.mean(changed[1]) < np.mean(changed[2])


def test_identity_features_get_subtler_with_the_level() -> None:
    # contrast between the feature pixels and a ring of pixels around them
    contrast = {}
    for difficulty in LEVELS:
        values = []
        for i in range(24):
            face = synthetic_face(0, 1000 + i, i, difficulty)
            mask = face.identity_mask
            ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
            values.append(np.abs(face.image[:, mask].mean(axis=1)
                                 - face.image[:, ring].mean(axis=1)).mean())
        contrast[difficulty] = float(np.mean(values))
    assert contrast[0] > contrast[1] > contrast[2]


@pytest.mark.parametrize("bad", [3, -1, True, 1.0, "1"])
def test_bad_difficulty_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="difficulty must be one of"):
        check_difficulty(bad)
    with pytest.raises(ValueError, match="difficulty must be one of"):
        synthetic_face(0, 1, 0, bad)
    with pytest.raises(ValueError, match="difficulty must be one of"):
        SyntheticPairSource(world_seed=0, n_pairs=4, genuine_fraction=0.5, first_identity=1000,
                            sampling_seed=0, difficulty=bad)


# --- the protocol's [data] table ----------------------------------------------------------------

DATA = {"source": "synthetic", "world_seed": 0, "n_pairs": 6, "genuine_fraction": 0.5,
        "first_identity": 1000}


def test_data_table_difficulty_defaults_to_zero() -> None:
    spec = parse_source(DATA, "p.toml [data]")
    assert spec.get("difficulty") == 0
    source = build_source(spec, seed=0)
    assert isinstance(source, SyntheticPairSource)
    assert source.difficulty == 0
    assert [p.pair_id for p in source.pairs()] == LEVEL0_PAIR_IDS


@pytest.mark.parametrize("difficulty", LEVELS)
def test_data_table_reads_difficulty(difficulty: int) -> None:
    spec = parse_source({**DATA, "difficulty": difficulty}, "p.toml [data]")
    assert spec.get("difficulty") == difficulty
    source = build_source(spec, seed=0)
    assert isinstance(source, SyntheticPairSource)
    assert source.difficulty == difficulty


@pytest.mark.parametrize("bad", [3, -1, 1.5, "2", True])
def test_data_table_refuses_bad_difficulty(bad: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_source({**DATA, "difficulty": bad}, "p.toml [data]")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("p.toml [data]: difficulty = ")
    assert "[0, 2]" in message or "an integer" in message


def test_difficulty_is_not_a_key_of_photo_sources() -> None:
    with pytest.raises(ProtocolError, match="unknown key 'difficulty'"):
        parse_source({"source": "demo", "difficulty": 1}, "p.toml [data]")
