"""Ground-truth map quality (relevance mass / rank accuracy, mask ROC AUC)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceattr.falsification.quality import MapQuality, map_quality
from faceattr.rng import numpy_generator

MASK = np.zeros((8, 8), dtype=np.bool_)
MASK[2:4, 2:6] = True  # 8 of 64 pixels


def test_the_mask_itself_is_perfect_and_its_inverse_is_worst() -> None:
    perfect = map_quality(MASK.astype(np.float64), MASK)
    assert perfect == MapQuality(roc_auc=1.0, rank_accuracy=1.0, mass_accuracy=1.0)
    worst = map_quality(1.0 - MASK, MASK)
    assert worst.roc_auc == 0.0
    assert worst.rank_accuracy == 0.0
    assert worst.mass_accuracy == 0.0


def test_a_constant_map_is_at_chance_auc_and_ranks_by_pixel_index() -> None:
    quality = map_quality(np.ones((8, 8)), MASK)
    assert quality.roc_auc == 0.5
    assert quality.mass_accuracy == pytest.approx(8 / 64)
    assert quality.rank_accuracy == 0.0  # the first 8 pixels by index lie outside the mask


def test_hand_computed_auc_with_a_tie() -> None:
    relevance = np.zeros((8, 8))
    relevance[MASK] = np.arange(8, dtype=np.float64)  # one mask pixel ties the background (0)
    relevance[0, 0] = 5.0  # one background pixel above five mask pixels
    n_in, n_out = 8, 56  # pairwise definition: win 1, tie 1/2
    expected = 0.0
    for value in range(8):
        expected += sum(1.0 if value > b else 0.5 if value == b else 0.0
                        for b in [5.0] + [0.0] * 55)
    assert map_quality(relevance, MASK).roc_auc == pytest.approx(expected / (n_in * n_out))


def test_negative_relevance_carries_no_mass() -> None:
    relevance = -np.ones((8, 8))
    relevance[MASK] = 2.0
    relevance[7, 7] = 2.0
    assert map_quality(relevance, MASK).mass_accuracy == pytest.approx(16 / 18)
    assert map_quality(-np.ones((8, 8)), MASK).mass_accuracy is None


def test_refusals() -> None:
    with pytest.raises(ValueError, match="finite"):
        map_quality(np.full((8, 8), np.nan), MASK)
    with pytest.raises(ValueError, match="inside and outside"):
        map_quality(np.ones((8, 8)), np.zeros((8, 8), dtype=np.bool_))
    with pytest.raises(ValueError, match="pixels"):
        map_quality(np.ones((4, 4)), MASK)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_blending_towards_the_mask_never_lowers_the_auc_much(seed: int, weight: float) -> None:
    noise = numpy_generator(seed, "quality").random((8, 8))
    low = map_quality(noise, MASK).roc_auc
    blended = map_quality((1 - weight) * noise + weight * MASK, MASK).roc_auc
    assert 0.0 <= low <= 1.0
    assert blended >= low - 1e-12  # adding weight to the mask pixels only raises their ranks
