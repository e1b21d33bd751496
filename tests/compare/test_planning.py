"""Pairs needed to show paired equivalence (the inconclusive exit's number)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from faceattr.compare.planning import (
    pairs_needed_tost_paired,
    plan_equivalence,
    tost_paired_power,
)
from faceattr.stats import PairedTable, tost_paired


def _identical(n: int) -> dict[str, bool]:
    return {f"p{i}": i % 3 == 0 for i in range(n)}


@pytest.mark.parametrize("margin", [0.1, 0.05])
def test_without_discordance_the_closed_form_and_the_actual_tost_agree(margin: float) -> None:
    # b = c = 0: Tango's z at +-m is -+sqrt(n m / (1 - m)), so n >= z^2 (1 - m) / m
    closed = math.ceil(norm.ppf(0.95) ** 2 * (1 - margin) / margin)
    assert closed == {0.1: 25, 0.05: 52}[margin]  # by hand: 2.7055 * 9 = 24.35, * 19 = 51.4
    assert pairs_needed_tost_paired(0.0, 0.0, margin=margin, alpha=0.05, power=0.8) == closed
    runs = _identical(closed)
    assert tost_paired(runs, runs, margin=margin, alpha=0.05).equivalent
    fewer = _identical(closed - 1)
    assert not tost_paired(fewer, fewer, margin=margin, alpha=0.05).equivalent


@pytest.mark.parametrize(("p10", "p01", "margin"), [(1 / 24, 1 / 24, 0.1), (0.05, 0.02, 0.1),
                                                    (0.01, 0.01, 0.05)])
def test_the_planned_n_reaches_the_power_in_simulation(p10: float, p01: float,
                                                       margin: float) -> None:
    n = pairs_needed_tost_paired(p10, p01, margin=margin, alpha=0.05, power=0.8)
    assert n is not None
    rng = np.random.default_rng(11)

    def simulated_power(size: int, reps: int = 300) -> float:
        hits = 0
        for _ in range(reps):
            cells = rng.choice(4, size=size, p=[p10, p01, 0.3, 0.7 - p10 - p01])
            b = {f"p{i}": bool(c in (0, 2)) for i, c in enumerate(cells)}
            a = {f"p{i}": bool(c in (1, 2)) for i, c in enumerate(cells)}
            hits += tost_paired(b, a, margin=margin, alpha=0.05).equivalent
        return hits / reps

    assert simulated_power(n) >= 0.72
    assert simulated_power(int(0.6 * n)) < 0.8
    assert tost_paired_power(p10, p01, n=n, margin=margin, alpha=0.05) >= 0.8
    assert tost_paired_power(p10, p01, n=n - 1, margin=margin, alpha=0.05) < 0.8


def test_a_difference_at_the_margin_has_no_sample_size() -> None:
    assert pairs_needed_tost_paired(0.15, 0.05, margin=0.1, alpha=0.05, power=0.8) is None
    plan = plan_equivalence(PairedTable(n_both=0, n_a_only=3, n_b_only=0, n_neither=7),
                            margin=0.1, alpha=0.05)
    assert plan.n_needed is None


def test_zero_observed_discordance_assumes_one_discordant_pair() -> None:
    plan = plan_equivalence(PairedTable(n_both=4, n_a_only=0, n_b_only=0, n_neither=8),
                            margin=0.1, alpha=0.05)
    assert (plan.rate_b_only, plan.rate_a_only) == (1 / 24, 1 / 24)
    assert plan.n_needed == pairs_needed_tost_paired(1 / 24, 1 / 24, margin=0.1, alpha=0.05,
                                                     power=0.8)
    assert "at least one assumed" in plan.assumption
    observed = plan_equivalence(PairedTable(n_both=4, n_a_only=2, n_b_only=1, n_neither=13),
                                margin=0.1, alpha=0.05)
    assert (observed.rate_b_only, observed.rate_a_only) == (0.1, 0.05)
    assert "2/20 pairs falsified only in B" in observed.assumption
