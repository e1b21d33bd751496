# Pair covariates (faceattr.data.covariates): the synthetic world's nuisance exactly as drawn,
# landmark covariates from five points, nulls with reasons, declared bins, and [strata] parsing.
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faceattr.config import ProtocolError
from faceattr.data.covariates import (
    COVARIATES,
    CovariateSpec,
    FivePoints,
    bin_label,
    covariate_value,
    pair_facts,
    read_strata_spec,
)
from faceattr.data.pairs import LimitedPairSource, LoadedImage, Pair
from faceattr.data.synthetic import synthetic_face
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.protocol import load_protocol
from faceattr.rng import numpy_generator

PROTOCOLS = Path(__file__).parents[1] / "validation" / "protocols"


def _source(difficulty: int, n_pairs: int = 40) -> SyntheticPairSource:
    return SyntheticPairSource(world_seed=0, n_pairs=n_pairs, genuine_fraction=0.5,
                               first_identity=1000, sampling_seed=0, difficulty=difficulty)


def test_level0_nuisance_is_the_generators_first_draws() -> None:
    face = synthetic_face(0, 1234, 3)
    rng = numpy_generator(0, "synthetic", "view", 1234, 3)
    shift_x, shift_y = rng.uniform(-3.0, 3.0, size=2)
    scale = rng.uniform(0.9, 1.1)
    n = face.nuisance
    assert n is not None
    assert (n.shift_x_px, n.shift_y_px, n.scale) == (shift_x, shift_y, scale)
    assert n.shift_px == math.hypot(shift_x, shift_y)
    assert (n.hair, n.glasses, n.earring, n.n_moles, n.n_occluders) == (False, False, False, 0, 0)
    assert n.difficulty == 0
    assert 0.0 <= n.light_strength <= 0.35


@pytest.mark.parametrize(("difficulty", "low", "high"), [(1, 0.25, 0.55), (2, 0.8, 0.97)])
def test_occluders_appear_at_the_levels_rates(difficulty: int, low: float, high: float) -> None:
    # level 1: P(any occluder) = 0.4; level 2: 1 - 0.2 * 0.5 = 0.9
    flags = [synthetic_face(0, 2000 + i, 0, difficulty).nuisance.n_occluders > 0  # type: ignore[union-attr]
             for i in range(120)]
    assert low <= np.mean(flags) <= high


def test_the_source_nuisance_is_the_rendered_images() -> None:
    source = _source(2)
    pair = source.pairs()[0]
    assert source.nuisance(pair.image_a) == \
        synthetic_face(0, int(pair.identity_a), 0, 2).nuisance


def test_nuisance_covariates_read_the_source_and_landmarks_are_null_with_a_reason() -> None:
    source = LimitedPairSource(_source(1), 4)  # the capability is found through the wrapper
    pair = source.pairs()[0]
    facts = pair_facts(source, pair, source.load_image(pair.image_a))
    value, reason = covariate_value(COVARIATES["light_gradient"], facts)
    assert value == facts.nuisance.light_strength
    assert reason is None
    value, reason = covariate_value(COVARIATES["yaw_proxy"], facts)
    assert value is None
    assert "no 5-point landmarks" in str(reason)
    assert covariate_value(COVARIATES["is_genuine"], facts) == (pair.is_genuine, None)


@dataclass(frozen=True)
class _PhotoSource:
    name: str = "photos"

    def pairs(self) -> list[Pair]:
        return [Pair("x-1", "a", "b", "1", "2", False)]

    def load_image(self, image_id: str) -> LoadedImage:
        return LoadedImage(image=np.full((3, 8, 8), 0.25, dtype=np.float32),
                           identity_mask=None)

    def landmarks_5pt(self, image_id: str) -> FivePoints | None:
        return FivePoints.from_mtcnn([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]],
                                     (120, 100))


def test_photo_covariates_from_the_image_and_the_landmarks() -> None:
    source = _PhotoSource()
    pair = source.pairs()[0]
    facts = pair_facts(source, pair, source.load_image("a"))
    assert covariate_value(COVARIATES["luminance"], facts)[0] == pytest.approx(0.25)
    assert covariate_value(COVARIATES["contrast"], facts)[0] == pytest.approx(0.0, abs=1e-7)
    assert covariate_value(COVARIATES["roll_deg"], facts) == (0.0, None)
    assert covariate_value(COVARIATES["yaw_proxy"], facts) == (0.0, None)
    assert covariate_value(COVARIATES["partial_face"], facts) == (False, None)
    value, reason = covariate_value(COVARIATES["occluder"], facts)
    assert value is None
    assert "not generated" in str(reason)


def test_five_points_pose_and_partial_face() -> None:
    angle = math.radians(10.0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    base = np.array([[-20.0, 0.0], [20.0, 0.0], [8.0, 20.0], [-15.0, 40.0], [15.0, 40.0]])
    points = base @ rot.T + 100.0
    five = FivePoints.from_mtcnn(points.tolist(), (200, 200))
    assert five.roll_deg() == pytest.approx(10.0)
    assert five.yaw_proxy() == pytest.approx(8.0 / 40.0)  # invariant to the roll
    assert not five.partial()
    assert FivePoints.from_mtcnn(np.add(base, [15.0, 100.0]).tolist(), (200, 200)).partial()
    dlib = FivePoints.from_dlib([[90, 50], [70, 50], [10, 50], [30, 50], [50, 80]], (100, 100))
    assert (dlib.eye_left, dlib.eye_right, dlib.nose) == ((20.0, 50.0), (80.0, 50.0),
                                                          (50.0, 80.0))
    with pytest.raises(ValueError, match="five finite"):
        FivePoints.from_mtcnn([[0, 0]], (10, 10))


def test_declared_cuts_bin_values_and_levels_are_fixed() -> None:
    spec = CovariateSpec(name="light_gradient", cuts=(0.15, 0.30))
    assert spec.labels() == ("<0.15", "[0.15, 0.3)", ">=0.3")
    assert [bin_label(spec, v) for v in (0.0, 0.15, 0.2999, 0.30, 0.9)] == \
        ["<0.15", "[0.15, 0.3)", "[0.15, 0.3)", ">=0.3", ">=0.3"]
    occ = CovariateSpec(name="occluder", cuts=())
    assert (bin_label(occ, False), bin_label(occ, True)) == ("no", "yes")
    assert bin_label(CovariateSpec(name="is_genuine", cuts=()), True) == "genuine"


def _strata(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {"covariates": [{"name": "occluder"},
                                               {"name": "scale", "cuts": [0.97, 1.03]}]}
    table.update(overrides)
    return table


def test_strata_spec_defaults_and_refusals() -> None:
    spec = read_strata_spec(_strata(), "t [strata]", {"a", "b"}, 0.05)
    assert spec.methods == ("a", "b")
    assert spec.outcomes == ("falsified",)
    assert spec.verdict == "primary"
    assert spec.alpha == 0.05
    assert spec.interactions == ()
    bad = {
        "continuous": _strata(covariates=[{"name": "scale"}]),
        "fixed levels": _strata(covariates=[{"name": "occluder", "cuts": [0.5]}]),
        "strictly increasing": _strata(covariates=[{"name": "scale", "cuts": [1.0, 0.9]}]),
        "not allowed": _strata(covariates=[{"name": "nonsense"}]),
        "at least one covariate": _strata(covariates=[]),
        "two distinct": _strata(interactions=[{"methods": ["a", "a"]}]),
        "unknown key": _strata(bins=3),
    }
    for message, table in bad.items():
        with pytest.raises(ProtocolError, match=message):
            read_strata_spec(table, "t [strata]", {"a", "b"}, 0.05)


def test_shipped_protocols_declare_strata() -> None:
    planted = load_protocol(PROTOCOLS / "studies" / "strata_planted.toml")
    assert planted.strata is not None
    assert ("oracle_random_if_occluded", "oracle") in planted.strata.interactions
    for level in (0, 1, 2):
        graded = load_protocol(PROTOCOLS / "graded" / f"level{level}.toml")
        assert graded.strata is not None
        assert "grad_cam" in graded.strata.methods
