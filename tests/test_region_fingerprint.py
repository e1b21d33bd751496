# The region fingerprint behind distinct_maps (issue #21 item 4): one map to the test has one
# fingerprint whatever its bytes; a different map, an inverted one or a shifted one does not.
from __future__ import annotations

import numpy as np
import pytest

from faceattr.falsification.regions import (
    Regions,
    quantile_regions,
    region_fingerprint,
    threshold_regions,
)
from faceattr.rng import numpy_generator


def _map(seed: int = 0) -> np.ndarray:
    rng = numpy_generator(seed, "test_region_fingerprint")
    return rng.uniform(0.0, 1.0, size=(16, 16))


def _fp(relevance: np.ndarray, q_frac: float = 0.1) -> str:
    regions = quantile_regions(relevance, q_frac)
    assert isinstance(regions, Regions)
    return region_fingerprint(regions)


@pytest.mark.parametrize("factor", [1e-6, 0.37, 3.0, 1e6])
def test_a_positive_rescaling_keeps_the_fingerprint(factor: float) -> None:
    phi = _map()
    assert _fp(factor * phi) == _fp(phi)
    assert _fp(np.sqrt(phi)) == _fp(phi)  # any strictly increasing transform


def test_exact_ties_are_broken_alike_in_a_rescaled_copy() -> None:
    # block-constant (upsampled) maps: every boundary is a tie, broken by flat pixel index
    phi = np.kron(_map()[:4, :4], np.ones((4, 4)))
    regions = quantile_regions(phi, 0.1)
    assert isinstance(regions, Regions)
    assert regions.n_boundary_ties > 0
    assert _fp(0.2 * phi) == _fp(phi)


def test_other_maps_have_other_fingerprints() -> None:
    phi = _map()
    assert _fp(_map(seed=1)) != _fp(phi)
    assert _fp(-phi) != _fp(phi)  # S_high and S_low swapped: order matters
    assert _fp(np.roll(phi, 1, axis=1)) != _fp(phi)
    assert _fp(phi, q_frac=0.2) != _fp(phi)
    assert len(_fp(phi)) == 64


def test_threshold_regions_and_index_order() -> None:
    phi = _map()
    regions = threshold_regions(phi, theta_high=0.8, theta_low=0.2)
    assert isinstance(regions, Regions)
    shuffled = Regions(high_idx=regions.high_idx[::-1], low_idx=regions.low_idx[::-1],
                       n_boundary_ties=0)
    assert region_fingerprint(shuffled) == region_fingerprint(regions)
