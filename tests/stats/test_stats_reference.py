from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.power import NormalIndPower

from faceattr.stats import (
    PairedTable,
    achieved_power_paired,
    adjust_family,
    cohens_h,
    mean_interval,
    newcombe_unpaired_interval,
    paired_cochran_q,
    paired_mcnemar,
    paired_risk_difference,
    paired_wilcoxon,
    pairs_needed_paired,
    pairs_needed_unpaired,
    proportion_bound,
    proportion_interval,
    tost_unpaired_counts,
    unpaired_comparison_counts,
)

# Reference values: fixtures/stats_reference.json, produced by tests/stats/make_stats_reference.py
# (each entry records its command, how it was computed, and the versions).
REF: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "stats_reference.json").read_text()
)


def cases(section: str) -> list[Any]:
    return [pytest.param(e, id=f"{section}-{i}") for i, e in enumerate(REF[section])]


def arms_from_table(a: int, b: int, c: int, d: int) -> tuple[dict[str, bool], dict[str, bool]]:
    # a = both True, b = only arm a, c = only arm b, d = neither
    xa: dict[str, bool] = {}
    xb: dict[str, bool] = {}
    i = 0
    for n, va, vb in ((a, True, True), (b, True, False), (c, False, True), (d, False, False)):
        for _ in range(n):
            xa[f"p{i:05d}"] = va
            xb[f"p{i:05d}"] = vb
            i += 1
    return xa, xb


def test_every_entry_records_command_and_versions() -> None:
    for section, entries in REF.items():
        if section.startswith("_"):
            continue
        for e in entries:
            assert e["command"].endswith("tests/stats/make_stats_reference.py"), section
            assert e["versions"], section
            assert e["how"], section


@pytest.mark.parametrize("case", cases("proportion_interval"))
def test_proportion_interval_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = proportion_interval(i["count"], i["n"], method=i["method"], alpha=i["alpha"])
    assert r.low == pytest.approx(case["expected"]["low"], abs=case["atol"])
    assert r.high == pytest.approx(case["expected"]["high"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("proportion_bound"))
def test_proportion_bound_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = proportion_bound(i["count"], i["n"], side=i["side"], method=i["method"], alpha=i["alpha"])
    assert r.bound == pytest.approx(case["expected"]["bound"], abs=case["atol"])


def test_one_sided_bound_is_the_two_sided_limit_at_double_alpha() -> None:
    # the one-sided 95% upper bound is the upper end of the two-sided 90% interval
    for method in ("wilson", "clopper-pearson"):
        up = proportion_bound(3, 10, side="upper", method=method, alpha=0.05)
        lo = proportion_bound(3, 10, side="lower", method=method, alpha=0.05)
        two = proportion_interval(3, 10, method=method, alpha=0.10)
        assert up.bound == pytest.approx(two.high, abs=1e-12)
        assert lo.bound == pytest.approx(two.low, abs=1e-12)


def test_clopper_pearson_zero_of_n_upper_bound_by_hand() -> None:
    # 0 of n: the exact one-sided upper bound solves (1 - p)^n = alpha ("rule of three" region)
    for n in (1, 10, 30, 300):
        r = proportion_bound(0, n, side="upper", method="clopper-pearson", alpha=0.05)
        assert r.bound == pytest.approx(1 - 0.05 ** (1 / n), abs=1e-9)
        r2 = proportion_bound(n, n, side="lower", method="clopper-pearson", alpha=0.05)
        assert r2.bound == pytest.approx(0.05 ** (1 / n), abs=1e-9)


@pytest.mark.parametrize("case", cases("mcnemar_exact"))
def test_mcnemar_exact_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    a, b = arms_from_table(4, i["n_a_only"], i["n_b_only"], 6)
    r = paired_mcnemar(a, b, alpha=0.05)
    assert r.test.statistic == case["expected"]["statistic"]
    assert r.test.p_value == pytest.approx(case["expected"]["p_value"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("cochran_q"))
def test_cochran_q_reference(case: dict[str, Any]) -> None:
    rows = case["inputs"]["rows"]
    arms = {f"m{j}": {f"p{k}": bool(r[j]) for k, r in enumerate(rows)} for j in range(len(rows[0]))}
    r = paired_cochran_q(arms, alpha=0.05)
    assert r.test.statistic == pytest.approx(case["expected"]["statistic"], abs=case["atol"])
    assert r.test.p_value == pytest.approx(case["expected"]["p_value"], abs=case["atol"])
    assert r.test.df == case["expected"]["df"]


@pytest.mark.parametrize("case", cases("newcombe_unpaired"))
def test_newcombe_unpaired_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = newcombe_unpaired_interval(i["count_a"], i["n_a"], i["count_b"], i["n_b"], alpha=i["alpha"])
    assert r.low == pytest.approx(case["expected"]["low"], abs=case["atol"])
    assert r.high == pytest.approx(case["expected"]["high"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("newcombe_paired"))
def test_newcombe_paired_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    a, b = arms_from_table(i["n_both"], i["n_a_only"], i["n_b_only"], i["n_neither"])
    r = paired_risk_difference(a, b, alpha=i["alpha"])
    assert r.low == pytest.approx(case["expected"]["low"], abs=case["atol"])
    assert r.high == pytest.approx(case["expected"]["high"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("multiplicity"))
def test_multiplicity_reference(case: dict[str, Any]) -> None:
    ps = case["inputs"]["p_values"]
    fam = {f"claim{i}": p for i, p in enumerate(ps)}
    holm = adjust_family(fam, method="holm", alpha=0.05)
    bh = adjust_family(fam, method="benjamini-hochberg", alpha=0.05)
    assert holm.adjusted == pytest.approx(case["expected"]["holm"], abs=case["atol"])
    assert list(holm.reject) == case["expected"]["holm_reject"]
    assert bh.adjusted == pytest.approx(case["expected"]["benjamini-hochberg"], abs=case["atol"])
    assert list(bh.reject) == case["expected"]["bh_reject"]


@pytest.mark.parametrize("case", cases("wilcoxon_exact"))
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_wilcoxon_exact_reference(case: dict[str, Any], alternative: str) -> None:
    d = case["inputs"]["differences"]
    a = {f"p{i}": float(v) for i, v in enumerate(d)}
    b = {f"p{i}": 0.0 for i in range(len(d))}
    r = paired_wilcoxon(a, b, alpha=0.05, alternative=alternative,  # type: ignore[arg-type]
                        zero_method="wilcox", p_method="exact")
    key = {"two-sided": "p_two_sided", "larger": "p_larger", "smaller": "p_smaller"}[alternative]
    assert r.test.p_value == pytest.approx(case["expected"][key], abs=case["atol"])
    e = case["expected"]
    want_stat = min(e["r_plus"], e["r_minus"]) if alternative == "two-sided" else e["r_plus"]
    assert r.test.statistic == want_stat
    assert r.test.direction == ("a>b" if e["r_plus"] > e["r_minus"] else "a<b")


@pytest.mark.parametrize("case", cases("t_interval"))
def test_t_interval_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = mean_interval(i["values"], method="t", alpha=i["alpha"], rng=None, n_resamples=None)
    assert r.low == pytest.approx(case["expected"]["low"], abs=case["atol"])
    assert r.high == pytest.approx(case["expected"]["high"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("score_test_2indep"))
def test_unpaired_score_test_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = unpaired_comparison_counts(i["count_a"], i["n_a"], i["count_b"], i["n_b"], alpha=0.05)
    assert r.test.statistic == pytest.approx(case["expected"]["statistic"], abs=case["atol"])
    assert r.test.p_value == pytest.approx(case["expected"]["p_value"], abs=case["atol"])


@pytest.mark.parametrize("case", cases("power"))
def test_power_reference(case: dict[str, Any]) -> None:
    i, e = case["inputs"], case["expected"]
    if "rate_a_only" in i and "power" in i:
        n = pairs_needed_paired(i["rate_a_only"], i["rate_b_only"], alpha=i["alpha"],
                                power=i["power"])
        assert n == e["n"]
    elif "rate_a_only" in i:
        pw = achieved_power_paired(i["rate_a_only"], i["rate_b_only"], n=i["n"], alpha=i["alpha"])
        assert pw == pytest.approx(e["power"], abs=case["atol"])
    else:
        assert cohens_h(i["rate_a"], i["rate_b"]) == pytest.approx(e["h"], abs=1e-12)
        n = pairs_needed_unpaired(i["rate_a"], i["rate_b"], alpha=i["alpha"], power=i["power"],
                                  alternative="two-sided")
        # the closed form ignores the far rejection tail; statsmodels solves exactly
        assert n == math.ceil(e["n_approx"]) or abs(n - e["n_approx"]) < 1.0


def test_achieved_power_at_planned_n_reaches_target() -> None:
    n = pairs_needed_paired(0.15, 0.05, alpha=0.05, power=0.8)
    assert achieved_power_paired(0.15, 0.05, n=n, alpha=0.05) >= 0.8
    assert achieved_power_paired(0.15, 0.05, n=n - 1, alpha=0.05) < 0.8
    m = pairs_needed_unpaired(0.3, 0.2, alpha=0.05, power=0.8, alternative="two-sided")
    got = NormalIndPower().power(effect_size=cohens_h(0.3, 0.2), nobs1=m, alpha=0.05, ratio=1.0,
                                 alternative="two-sided")
    assert got >= 0.8


@pytest.mark.parametrize("case", cases("tost_unpaired"))
def test_tost_unpaired_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    r = tost_unpaired_counts(i["count_a"], i["n_a"], i["count_b"], i["n_b"], margin=i["margin"],
                             alpha=0.05)
    assert r.p_lower == pytest.approx(case["expected"]["p_lower"], abs=case["atol"])
    assert r.p_upper == pytest.approx(case["expected"]["p_upper"], abs=case["atol"])


def test_paired_table_fixture_helper_counts() -> None:
    a, b = arms_from_table(1, 2, 3, 4)
    r = paired_mcnemar(a, b, alpha=0.05)
    assert r.table == PairedTable(n_both=1, n_a_only=2, n_b_only=3, n_neither=4)
