from __future__ import annotations

import numpy as np
import pytest

from faceattr.falsification.verdicts import simple_verdict_falsified, summarise_drifts


def test_summary_of_hand_built_drifts() -> None:
    summary = summarise_drifts(np.array([1.0, 2.0, 3.0]), np.array([0.5, 2.0, 2.5]))
    assert summary.d_high_rad == pytest.approx(2.0)
    assert summary.d_low_rad == pytest.approx(5.0 / 3.0)
    assert summary.margin_rad == pytest.approx(1.0 / 3.0)
    assert summary.sd_high_rad == pytest.approx(1.0)
    # d_high_i <= d_low_j: 1.0 <= {2, 2.5}; 2.0 <= {2, 2.5}; 3.0 <= none -> 4 of 9
    assert summary.pairwise_violation_frac == pytest.approx(4.0 / 9.0)
    assert not simple_verdict_falsified(summary)


def test_zero_margin_is_falsified() -> None:
    # the boundary: removing the "most relevant" pixels moves the embedding no more
    summary = summarise_drifts(np.array([1.0, 2.0]), np.array([2.0, 1.0]))
    assert summary.margin_rad == 0.0
    assert simple_verdict_falsified(summary)


def test_negative_margin_is_falsified() -> None:
    assert simple_verdict_falsified(summarise_drifts(np.array([0.1, 0.2]), np.array([1.0, 1.1])))


def test_needs_two_draws() -> None:
    with pytest.raises(ValueError, match="at least 2 draws"):
        summarise_drifts(np.array([1.0]), np.array([0.5, 0.4]))
