"""Discriminative validity: truth tracking, the shape/blur artefact controls and their claims,
each with a planted defect that must make the check fail."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from faceattr.claims import ClaimSpec
from faceattr.claims.base import RunArtefacts
from faceattr.claims.registry import evaluate_claim
from faceattr.falsification.regions import Regions, TrivialMap
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.stats.proportions import proportion_interval
from faceattr.validity.artefacts import ArtefactResult, artefact_cell, shape_shifted
from faceattr.validity.tracking import _resampled_means, _row_spearman, truth_tracking
from tests.helpers import FAMILY, records, run, valid
from tests.helpers import graded_family as _family

# --- truth tracking --------------------------------------------------------------------------


def test_tracking_is_perfect_when_outcome_follows_quality() -> None:
    rows = [r for rs in _family().values() for r in rs]
    result = truth_tracking(rows, list(FAMILY), quality="rank_accuracy", outcome="margin",
                            rng=numpy_generator(0, "t"), n_resamples=200)
    assert result.spearman == pytest.approx(1.0)
    assert result.low is not None
    assert result.low > 0.9
    assert result.mean_quality == pytest.approx((0.95, 0.8, 0.6, 0.5))


def test_tracking_is_undefined_when_the_outcome_is_constant() -> None:
    rows = [r for rs in _family().values() for r in rs]
    result = truth_tracking(rows, list(FAMILY), quality="rank_accuracy", outcome="pass_rate",
                            rng=numpy_generator(0, "t"), n_resamples=200)
    assert result.spearman is None
    assert result.undefined_reason is not None
    assert "constant" in result.undefined_reason


def test_tracking_refuses_methods_on_different_pairs() -> None:
    family = _family()
    family["m3"] = family["m3"][:-1]
    with pytest.raises(ValueError, match="different pairs"):
        truth_tracking([r for rs in family.values() for r in rs], list(FAMILY),
                       quality="roc_auc", outcome="margin", rng=numpy_generator(0, "t"))


def _judge(kind: str, params: dict[str, Any], method_records: dict[str, list[PairRecord]],
           artefacts: ArtefactResult | None = None) -> Any:
    spec = ClaimSpec(id="c", kind=kind, params=tuple(sorted(params.items())))
    run_artefacts = RunArtefacts(summary=run(method_records),
                                 records=[r for rs in method_records.values() for r in rs],
                                 claims=(spec,), artefacts=artefacts)
    return evaluate_claim(spec, run_artefacts)


TRACKING = {"methods": list(FAMILY), "quality": "rank_accuracy", "outcome": "margin",
            "min_spearman": 0.9, "n_resamples": 200}


def test_truth_tracking_claim_passes_on_a_faithful_test() -> None:
    result = _judge("truth_tracking", TRACKING, _family())
    assert result.passed, result.detail
    assert result.family == "validity"


def test_truth_tracking_claim_fails_on_a_planted_backwards_test() -> None:
    result = _judge("truth_tracking", TRACKING, _family(planted=True))
    assert not result.passed
    assert result.observed == pytest.approx(-1.0)


def test_truth_tracking_claim_fails_when_undefined() -> None:
    result = _judge("truth_tracking", {**TRACKING, "outcome": "pass_rate"}, _family())
    assert not result.passed
    assert "undefined" in result.detail


def test_truth_tracking_needs_three_methods() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        _judge("truth_tracking", {**TRACKING, "methods": ["m0", "m1"]}, _family())


# --- shape control ---------------------------------------------------------------------------


def _regions(high: list[int], low: list[int]) -> Regions:
    return Regions(high_idx=np.array(high, dtype=np.intp), low_idx=np.array(low, dtype=np.intp),
                   n_boundary_ties=0)


def test_shape_is_moved_rigidly_inside_the_image_with_bounded_overlap() -> None:
    width = 16
    block = [y * width + x for y in range(2, 6) for x in range(3, 8)]  # a 4x5 block
    for seed in range(20):
        moved = shape_shifted(_regions(block, [255]), (16, 16), numpy_generator(seed, "s"),
                              max_overlap_frac=0.25)
        assert isinstance(moved, Regions)
        ys, xs = np.divmod(moved.high_idx, width)
        assert ys.max() - ys.min() == 3
        assert xs.max() - xs.min() == 4
        assert moved.high_idx.size == len(block)
        assert np.intersect1d(moved.high_idx, block).size <= 0.25 * len(block)
        np.testing.assert_array_equal(moved.low_idx, [255])


def test_shape_control_is_reproducible_and_seed_dependent() -> None:
    block = [y * 16 + x for y in range(2, 6) for x in range(3, 8)]
    first = [shape_shifted(_regions(block, [255]), (16, 16), numpy_generator(s, "s"),
                           max_overlap_frac=0.25) for s in (1, 1, 2)]
    assert all(isinstance(m, Regions) for m in first)
    a, b, c = (m.high_idx for m in first if isinstance(m, Regions))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_shape_that_fills_the_image_has_no_admissible_position() -> None:
    everything = list(range(64))
    moved = shape_shifted(_regions(everything[:-1], [63]), (8, 8), numpy_generator(0, "s"),
                          max_overlap_frac=0.25)
    assert isinstance(moved, TrivialMap)


def _cell_records(method: str, tested_pass: list[bool], control_pass: list[bool]
                  ) -> tuple[list[PairRecord], list[PairRecord]]:
    tested = [valid(i, method, not p) for i, p in enumerate(tested_pass)]
    control = [valid(i, method, not p) for i, p in enumerate(control_pass)]
    return tested, control


def test_artefact_cell_counts_passes_explained_by_shape() -> None:
    tested, control = _cell_records("m", [True] * 8 + [False] * 2,
                                    [True, True, False, False, False, False, False, False,
                                     True, True])
    cell = artefact_cell("m", "mean", tested, control, alpha=0.05, interval_method="wilson")
    simple = cell.shape_control("simple")
    assert simple.explained is not None
    assert (simple.explained.count, simple.explained.n) == (2, 8)
    assert simple.control_pass.count == 4
    assert cell.fr.count == 2


def _artefacts(explained: int, n_pass: int, fr_count: int, n: int = 40) -> ArtefactResult:
    tested = [valid(i, "m", i >= n_pass) for i in range(n)]
    control = [valid(i, "m", not i < explained) for i in range(n)]
    cells = []
    for fill in ("mean", "nli"):
        cell = artefact_cell("m", fill, tested, control, alpha=0.05, interval_method="wilson")
        cells.append(replace(cell, fr=proportion_interval(fr_count, n, method="wilson",
                                                          alpha=0.05)))
    return ArtefactResult(n_pairs=n, max_overlap_frac=0.25, cells=tuple(cells))


SHAPE = {"method": "m", "max_share": 0.25, "verdict": "simple", "on": "ci_high"}


def test_shape_control_claim_passes_when_shape_explains_little() -> None:
    result = _judge("shape_control", SHAPE, {"m": records("m", n_falsified=0, n_passed=40)},
                    _artefacts(explained=1, n_pass=40, fr_count=0))
    assert result.passed, result.detail


def test_shape_control_claim_fails_on_a_planted_shape_artefact() -> None:
    result = _judge("shape_control", SHAPE, {"m": records("m", n_falsified=0, n_passed=40)},
                    _artefacts(explained=38, n_pass=40, fr_count=0))
    assert not result.passed
    assert result.observed > 0.9


def test_shape_control_claim_fails_without_the_stage() -> None:
    result = _judge("shape_control", SHAPE, {"m": records("m", n_falsified=0, n_passed=40)})
    assert not result.passed
    assert "[artefacts]" in result.detail


def test_blur_control_claim_passes_at_chance_and_fails_off_chance() -> None:
    rows = {"m": records("m", n_falsified=20, n_passed=20)}
    at_chance = _judge("blur_control", {"method": "m"}, rows,
                       _artefacts(explained=0, n_pass=20, fr_count=20))
    assert at_chance.passed, at_chance.detail
    planted = _judge("blur_control", {"method": "m"}, rows,
                     _artefacts(explained=0, n_pass=20, fr_count=4))  # a blurry map "wins"
    assert not planted.passed


def test_blur_control_corrects_for_testing_every_fill() -> None:
    """13/40 is outside the 95% interval of one fill but inside the Bonferroni interval of two:
    the same maps tested under m fills must not fail a control at chance m times as often."""
    rows = {"m": records("m", n_falsified=20, n_passed=20)}
    assert proportion_interval(13, 40, method="wilson", alpha=0.05).high < 0.5
    artefacts = _artefacts(explained=0, n_pass=27, fr_count=13)
    both = _judge("blur_control", {"method": "m"}, rows, artefacts)
    assert both.passed, both.detail
    assert both.interval_method == "wilson, Bonferroni over 2 fills"
    assert both.alpha == pytest.approx(0.025)
    one = _judge("blur_control", {"method": "m", "fills": ["mean"]}, rows, artefacts)
    assert not one.passed


def test_artefact_result_round_trips_through_json() -> None:
    result = _artefacts(explained=3, n_pass=30, fr_count=10)
    assert ArtefactResult.from_json(result.to_json()) == result
    with pytest.raises(ValueError, match="keys"):
        ArtefactResult.from_json({**result.to_json(), "extra": 1})


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 8), st.booleans())
def test_vectorised_bootstrap_spearman_matches_scipy(seed: int, n_methods: int,
                                                     ties: bool) -> None:
    """The blockwise resampled Spearman equals scipy's on each resample, ties included."""
    rng = np.random.default_rng(seed)
    q = rng.random((n_methods, 12))
    o = rng.integers(0, 2, (n_methods, 12)).astype(float) if ties else rng.random((n_methods, 12))
    idx = rng.integers(0, 12, size=(20, 12))
    weights = np.zeros((20, 12))
    np.add.at(weights, (np.arange(20)[:, None], idx), 1.0)
    fast = _row_spearman(_resampled_means(q, weights), _resampled_means(o, weights))
    for row, pick in enumerate(idx):
        mq, mo = q[:, pick].mean(axis=1), o[:, pick].mean(axis=1)
        if np.ptp(mq) == 0 or np.ptp(mo) == 0:
            assert np.isnan(fast[row])
        else:
            assert fast[row] == pytest.approx(stats.spearmanr(mq, mo).statistic, abs=1e-12)
