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


def test_theorem_survives_when_both_tests_reject() -> None:
    from faceattr.falsification.verdicts import theorem_verdict

    high = np.array([1.2, 1.3, 1.25, 1.35, 1.28])
    low = np.array([0.10, 0.12, 0.09, 0.11, 0.13])
    verdict = theorem_verdict(high, low, tau_high=0.5, tau_low=0.3, epsilon=0.1, alpha=0.05)
    assert not verdict.falsified
    assert verdict.p_high < 1e-4
    assert verdict.p_low < 1e-4


def test_theorem_p_value_matches_a_hand_computed_t_test() -> None:
    from scipy.stats import t

    from faceattr.falsification.verdicts import theorem_verdict

    high = np.array([0.6, 0.7, 0.8])  # mean 0.7, sd 0.1: t = (0.7 - 0.5) / (0.1 / sqrt 3)
    verdict = theorem_verdict(high, np.array([0.1, 0.2, 0.15]), tau_high=0.5, tau_low=0.3,
                              epsilon=0.1, alpha=0.05)
    assert verdict.p_high == pytest.approx(float(t.sf(0.2 / (0.1 / np.sqrt(3)), df=2)),
                                           rel=1e-9)


@pytest.mark.parametrize(("high", "low"), [
    ([0.45, 0.55, 0.5, 0.52], [0.1, 0.1, 0.11, 0.09]),  # high drift not above tau_high
    ([1.2, 1.3, 1.25, 1.3], [0.25, 0.35, 0.3, 0.32]),  # low drift not below tau_low
    ([0.2, 0.3, 0.25, 0.28], [1.0, 1.1, 1.2, 1.05]),  # inverted map
])
def test_theorem_falsifies_when_a_test_fails(high: list[float], low: list[float]) -> None:
    from faceattr.falsification.verdicts import theorem_verdict

    verdict = theorem_verdict(np.array(high), np.array(low), tau_high=0.5, tau_low=0.3,
                              epsilon=0.1, alpha=0.05)
    assert verdict.falsified


def test_theorem_boundary_mean_equal_to_tau_is_falsified() -> None:
    from faceattr.falsification.verdicts import theorem_verdict

    # no spread and mean exactly tau_high: "exceeds" is not shown
    verdict = theorem_verdict(np.full(4, 0.5), np.full(4, 0.1), tau_high=0.5, tau_low=0.3,
                              epsilon=0.1, alpha=0.05)
    assert verdict.falsified
    assert verdict.p_high == 1.0
    assert verdict.p_low == 0.0


def test_theorem_needs_the_epsilon_gap() -> None:
    from faceattr.falsification.verdicts import theorem_verdict

    verdict = theorem_verdict(np.full(4, 2.0), np.full(4, 0.0), tau_high=0.35, tau_low=0.3,
                              epsilon=0.1, alpha=0.05)
    assert verdict.falsified


def test_hoeffding_k_matches_the_hand_computed_value() -> None:
    from faceattr.falsification.planning import hoeffding_k, plan_k

    # pi^2 ln(2 / 0.05) / (2 * 0.1^2) = 9.8696 * 3.68888 / 0.02 = 1820.4 -> 1821
    assert hoeffding_k(eps_rad=0.1, delta=0.05) == 1821
    assert not plan_k(100, eps_rad=0.1, delta=0.05).sufficient
    assert plan_k(1821, eps_rad=0.1, delta=0.05).sufficient
    with pytest.raises(ValueError, match="eps_rad must be > 0"):
        hoeffding_k(eps_rad=0.0, delta=0.05)
