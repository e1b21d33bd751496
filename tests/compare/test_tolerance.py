"""The cross-machine float tolerance (faceattr.stats.tolerance): its numbers, its bound on
float32 last-bit noise, and its boundary rule per verdict."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import optimize
from scipy.stats import ttest_1samp

from faceattr.stats.tolerance import (
    DIRECTION_ROUNDING,
    NORM_ROUNDING,
    UNIT_ROUNDOFF_F32,
    RecordTolerance,
    TheoremSettings,
    angle_tolerance,
    cosine_tolerance,
    norm_rounding,
    one_sided_p_range,
    record_tolerance,
)
from tests.compare.builders import record
from tests.compare.float_runs import FULL_PROTOCOL, normalise, nudge, two_machines

U = UNIT_ROUNDOFF_F32
THEOREM = TheoremSettings.from_protocol(FULL_PROTOCOL)


def test_the_constants_are_the_derived_numbers() -> None:
    assert U == 2.0 ** -24
    # sqrt(512 / 8 + log2 8) / 2 + 1 = sqrt(67) / 2 + 1, by hand 5.0927
    assert pytest.approx(5.0927, abs=1e-4) == NORM_ROUNDING / U
    assert norm_rounding(128, 8) / U == pytest.approx(math.sqrt(19) / 2 + 1)
    assert DIRECTION_ROUNDING == 16 * U
    assert cosine_tolerance(1.0) == pytest.approx(4 * NORM_ROUNDING)  # 20.4 u near c = 1
    assert cosine_tolerance(0.0) == pytest.approx(4 * DIRECTION_ROUNDING)


def test_the_angle_tolerance_is_the_arccos_modulus() -> None:
    for d in (0.05, 0.3, 1.0, 2.5):
        # far from 0 and pi: delta_c / sin d to first order
        assert angle_tolerance(d) == pytest.approx(cosine_tolerance(math.cos(d)) / math.sin(d),
                                                   rel=1e-3)
    # at d = 0 the clip makes it sqrt(2 delta_c) (arccos(1 - x) ~ sqrt(2 x))
    assert angle_tolerance(0.0) == pytest.approx(math.sqrt(2 * cosine_tolerance(1.0)), rel=1e-3)
    assert angle_tolerance(0.0166) == pytest.approx(7.7e-5, rel=0.01)  # the docstring's number
    assert angle_tolerance(0.01) > angle_tolerance(0.1) > angle_tolerance(1.5)
    with pytest.raises(ValueError, match="angle_rad"):
        angle_tolerance(-0.1)


def test_float32_last_bit_noise_stays_within_the_angle_tolerance() -> None:
    # two "machines": raw outputs nudged by up to 3 ulps, normalised with two summation orders
    rng = np.random.default_rng(7)
    ratios = []
    for dim in (128, 512):
        for scale in (0.01, 0.03, 0.1, 0.5, 2.0):
            x = rng.standard_normal((64, dim)).astype(np.float32)
            y = (x + scale * rng.standard_normal((64, dim))).astype(np.float32)
            ea, eb = normalise(x, order="pairwise"), normalise(y, order="pairwise")
            fa, fb = (normalise(nudge(x, rng, ulps=3), order="sequential"),
                      normalise(nudge(y, rng, ulps=3), order="sequential"))
            d1 = np.arccos(np.clip(np.sum(ea.astype(np.float64) * eb, axis=1), -1, 1))
            d2 = np.arccos(np.clip(np.sum(fa.astype(np.float64) * fb, axis=1), -1, 1))
            ratios += [abs(p - q) / angle_tolerance(float(p)) for p, q in zip(d1, d2,
                                                                             strict=True)]
    assert max(ratios) <= 1.0  # the bound holds
    assert max(ratios) > 0.02  # and is not vacuous: the noise uses a visible share of it


def test_simulated_machines_stay_within_every_metric_tolerance() -> None:
    a, b = two_machines(200, seed=3, n_ties=0)
    for ra, rb in zip(a, b, strict=True):
        ta = record_tolerance(ra, THEOREM)
        for name in ("margin_rad", "d_high_rad", "d_low_rad", "score_clean",
                     "pairwise_violation_frac"):
            va, vb, tol = getattr(ra, name), getattr(rb, name), ta.metric(name)
            assert tol is not None
            assert abs(va - vb) <= tol, (ra.pair_id, name, va, vb, tol)


def test_typical_margin_tolerances_sit_far_below_a_change_of_the_science() -> None:
    a, _ = two_machines(100, seed=4, n_ties=0)  # drifts from 0.01 rad to ~1.4 rad
    tols = [t.margin_rad for t in (record_tolerance(r, THEOREM) for r in a)]
    assert all(t is not None and 5e-6 < t < 2e-4 for t in tols)  # q or fill moves > 1e-3
    assert sorted(t for t in tols if t is not None)[len(tols) // 2] < 3e-5  # the median


def test_the_simple_verdict_is_a_boundary_one_only_within_the_margin_tolerance() -> None:
    base = record(0, "saliency", falsified=False)  # drifts (1.0, 1.2) vs (0.1, 0.2)
    tol = record_tolerance(base, THEOREM)
    assert tol.margin_rad is not None
    assert not tol.boundary_simple
    tie = replace(base, drift_high_rad=(0.15, 0.15), d_high_rad=0.15, margin_rad=1e-6)
    tied = record_tolerance(tie, THEOREM)
    assert tied.margin_rad is not None
    assert tied.boundary_simple
    assert tied.boundary("simple")
    beyond = replace(tie, margin_rad=3 * tied.margin_rad)
    assert not record_tolerance(beyond, THEOREM).boundary_simple


def test_a_trivial_record_is_never_a_boundary_one() -> None:
    t = record_tolerance(record(0, "constant", True, status="trivial"), THEOREM)
    assert (t.boundary_simple, t.boundary_theorem, t.margin_rad) == (False, False, None)
    assert t.score_clean == pytest.approx(cosine_tolerance(0.5))


def test_the_p_value_range_contains_the_t_test_and_widens_with_the_tolerance() -> None:
    sample = [0.52, 0.61, 0.55, 0.58, 0.49, 0.63]
    p = float(ttest_1samp(sample, popmean=0.5, alternative="greater").pvalue)
    lo, hi = one_sided_p_range(sample, [1e-5] * 6, tau=0.5, alternative="greater")
    assert lo < p < hi
    lo2, hi2 = one_sided_p_range(sample, [1e-3] * 6, tau=0.5, alternative="greater")
    assert lo2 < lo
    assert hi2 > hi
    p_less = float(ttest_1samp(sample, popmean=0.6, alternative="less").pvalue)
    lo3, hi3 = one_sided_p_range(sample, [1e-5] * 6, tau=0.6, alternative="less")
    assert lo3 < p_less < hi3
    # no spread: decided by the mean; within tolerance of tau both ways are reachable
    assert one_sided_p_range([0.5] * 4, [1e-5] * 4, tau=0.5, alternative="greater") == (0.0, 1.0)
    lo4, hi4 = one_sided_p_range([0.6] * 4, [1e-5] * 4, tau=0.5, alternative="greater")
    assert lo4 == 0.0
    assert hi4 < 1e-12


def _with_p_high_at(alpha: float, shift: float) -> tuple[tuple[float, ...], float]:
    base = np.array([0.0, 0.02, -0.01, 0.03, -0.02, 0.01])

    def gap(m: float) -> float:
        return float(ttest_1samp(base + m, popmean=0.5, alternative="greater").pvalue) - alpha

    m = optimize.brentq(gap, 0.5, 0.6, xtol=1e-15)
    high = tuple(float(v) for v in base + m + shift)
    return high, float(ttest_1samp(high, popmean=0.5, alternative="greater").pvalue)


def test_the_theorem_verdict_is_a_boundary_one_only_when_its_p_value_can_cross_alpha() -> None:
    assert THEOREM is not None
    low = (0.1, 0.12, 0.09, 0.11, 0.1, 0.13)  # p_low far below alpha

    def theorem_record(high: tuple[float, ...]) -> RecordTolerance:
        r = replace(record(0, "saliency", falsified=False), drift_high_rad=high,
                    drift_low_rad=low, score_drop_high=(0.1,) * 6, score_drop_low=(0.0,) * 6,
                    d_high_rad=sum(high) / 6, d_low_rad=sum(low) / 6,
                    margin_rad=sum(high) / 6 - sum(low) / 6)
        return record_tolerance(r, THEOREM)

    at, p_at = _with_p_high_at(THEOREM.alpha, 0.0)
    assert p_at == pytest.approx(THEOREM.alpha, abs=1e-9)
    tol = theorem_record(at)
    assert tol.p_high_range is not None
    assert tol.p_high_range[0] < THEOREM.alpha <= tol.p_high_range[1]
    assert tol.boundary_theorem is True
    assert tol.boundary("theorem")
    # 0.5 mrad away from the boundary (> 10x the drift tolerance): determined
    away, p_away = _with_p_high_at(THEOREM.alpha, 5e-4)
    assert p_away < THEOREM.alpha
    assert theorem_record(away).boundary_theorem is False
    no_gap = replace(THEOREM, tau_low=THEOREM.tau_high - THEOREM.epsilon / 2)
    r = replace(record(0, "saliency", falsified=False), drift_high_rad=at, drift_low_rad=low,
                score_drop_high=(0.1,) * 6, score_drop_low=(0.0,) * 6)
    assert record_tolerance(r, no_gap).boundary_theorem is False  # condition (3) decides


def test_theorem_settings_come_from_the_protocol_or_stay_unknown() -> None:
    expected = TheoremSettings(distance="geodesic", tau_high=0.5, tau_low=0.3, epsilon=0.1,
                               alpha=0.05)
    assert expected == THEOREM
    assert TheoremSettings.from_protocol({"falsification": {"q_frac": 0.1}}) is None
    unknown = record_tolerance(record(0, "saliency", falsified=False), None)
    assert unknown.boundary_theorem is None
    assert not unknown.boundary("theorem")


def test_the_record_tolerance_round_trips_through_json() -> None:
    t = record_tolerance(record(0, "saliency", falsified=True), THEOREM)
    assert RecordTolerance.from_json(t.to_json()) == t
    with pytest.raises(ValueError, match="tolerance keys mismatch"):
        RecordTolerance.from_json({**t.to_json(), "extra": 1})
