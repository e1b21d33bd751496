from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceattr.falsification.regions import (
    NonFiniteMapError,
    Regions,
    TrivialMap,
    quantile_regions,
)


def test_constant_map_is_trivial() -> None:
    result = quantile_regions(np.full((8, 8), 3.0), 0.1)
    assert isinstance(result, TrivialMap)
    assert "constant map" in result.reason


def test_ties_straddling_the_regions_make_the_map_trivial() -> None:
    # 4 of 64 pixels are 1, the rest 0: the top 10% (6 px) must include tied zeros
    relevance = np.zeros((8, 8))
    relevance[0, :4] = 1.0
    result = quantile_regions(relevance, 0.1)
    assert isinstance(result, TrivialMap)
    assert "ties straddle" in result.reason


def test_ties_inside_a_region_are_broken_by_index_and_counted() -> None:
    # 6 distinct top pixels; 58 zeros of which the bottom 6 are taken by index
    relevance = np.zeros((8, 8))
    relevance[0, :6] = np.arange(1.0, 7.0)
    result = quantile_regions(relevance, 0.1)
    assert isinstance(result, Regions)
    np.testing.assert_array_equal(result.high_idx, np.arange(6))
    np.testing.assert_array_equal(result.low_idx, np.arange(6, 12))
    assert result.n_boundary_ties == 58 - 6


def test_nan_map_is_an_error_not_a_region() -> None:
    relevance = np.arange(64.0).reshape(8, 8)
    relevance[3, 3] = np.nan
    with pytest.raises(NonFiniteMapError, match="1 non-finite values"):
        quantile_regions(relevance, 0.1)


def test_region_size_must_fit() -> None:
    with pytest.raises(ValueError, match="need 1 <= size"):
        quantile_regions(np.arange(16.0).reshape(4, 4), 0.01)


@given(arrays(np.float64, (6, 7), elements=st.floats(-1e6, 1e6), unique=True),
       st.sampled_from([0.05, 0.1, 0.25, 0.5]))
def test_regions_are_area_matched_and_ordered(relevance: np.ndarray, q_frac: float) -> None:
    result = quantile_regions(relevance, q_frac)
    assert isinstance(result, Regions)
    flat = relevance.ravel()
    assert result.high_idx.size == result.low_idx.size == round(q_frac * flat.size)
    assert flat[result.high_idx].min() > flat[result.low_idx].max()
    assert not set(result.high_idx) & set(result.low_idx)
    assert result.n_boundary_ties == 0


def test_threshold_regions_follow_the_theorem_literally() -> None:
    from faceattr.falsification.regions import threshold_regions

    relevance = np.linspace(0.0, 10.0, 64).reshape(8, 8)  # normalised: i / 63
    result = threshold_regions(relevance, theta_high=0.9, theta_low=0.2)
    assert isinstance(result, Regions)
    np.testing.assert_array_equal(result.high_idx, np.arange(57, 64))  # i/63 > 0.9
    np.testing.assert_array_equal(result.low_idx, np.arange(0, 13))  # i/63 < 0.2


def test_threshold_regions_can_be_empty_then_trivial() -> None:
    from faceattr.falsification.regions import threshold_regions

    relevance = np.zeros((8, 8))
    relevance[0, 0] = 1.0  # normalised: one pixel at 1, all others at 0
    result = threshold_regions(relevance, theta_high=0.5, theta_low=0.0)
    assert isinstance(result, TrivialMap)
    assert "empty region" in result.reason
