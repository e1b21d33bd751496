from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize
from statsmodels.stats import proportion as sm_proportion

from faceattr.stats import (
    PairedTable,
    ProportionInterval,
    TestResult,
    achieved_power_paired,
    adjust_family,
    align_pairs,
    farrington_manning_z,
    mean_interval,
    paired_cochran_q,
    paired_mcnemar,
    paired_mean_difference,
    paired_risk_difference,
    paired_wilcoxon,
    pairs_needed_paired,
    pairs_needed_unpaired,
    proportion_bound,
    proportion_from_outcomes,
    proportion_interval,
    tango_score_z,
    tost_paired,
    tost_unpaired,
    unpaired_comparison,
    unpaired_comparison_counts,
)


def dumps(obj: object) -> str:
    return json.dumps(obj, allow_nan=False)


def ids(n: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


# --- n = 0 and non-binary input -------------------------------------------------------------


def test_zero_pairs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        proportion_interval(0, 0, method="wilson", alpha=0.05)
    with pytest.raises(ValueError, match="no pairs"):
        proportion_from_outcomes([], method="clopper-pearson", alpha=0.05)
    with pytest.raises(ValueError, match="no pairs"):
        paired_mcnemar({}, {}, alpha=0.05)
    with pytest.raises(ValueError, match="no pairs"):
        mean_interval([], method="t", alpha=0.05, rng=None, n_resamples=None)
    with pytest.raises(ValueError, match="no pairs"):
        unpaired_comparison({}, {"x": True}, alpha=0.05)


@pytest.mark.parametrize(
    "bad",
    [[0.5, 1.0, 0.0], [50.0, 100.0], [0, 1, 1], np.array([0.1, 0.9]), [True, 0.5]],
    ids=["fractions", "percentages", "ints", "float-array", "mixed"],
)
def test_binomial_interval_refuses_non_binary_input(bad: object) -> None:
    with pytest.raises(ValueError, match="binary"):
        proportion_from_outcomes(bad, method="wilson", alpha=0.05)  # type: ignore[arg-type]


def test_paired_test_refuses_non_binary_verdicts() -> None:
    a = {"p1": True, "p2": 0.5}
    b = {"p1": True, "p2": False}
    with pytest.raises(ValueError, match="must be bool"):
        paired_mcnemar(a, b, alpha=0.05)  # type: ignore[arg-type]


def test_mean_refuses_booleans() -> None:
    with pytest.raises(ValueError, match="proportion interval"):
        mean_interval([True, False, True], method="t", alpha=0.05, rng=None, n_resamples=None)


def test_mean_refuses_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        mean_interval([0.1, math.nan, 0.3], method="t", alpha=0.05, rng=None, n_resamples=None)


def test_outcomes_as_bool_array_are_accepted() -> None:
    r = proportion_from_outcomes(np.array([True, False, False, True]), method="wilson", alpha=0.1)
    assert (r.count, r.n, r.estimate) == (2, 4, 0.5)


# --- misaligned pair ids ---------------------------------------------------------------------


def test_paired_test_refuses_misaligned_pair_ids() -> None:
    a = dict.fromkeys(ids(10), True)
    b = dict.fromkeys([*ids(9), "q9999"], False)
    with pytest.raises(ValueError, match=r"different pair sets.*p0009.*q9999"):
        paired_mcnemar(a, b, alpha=0.05)
    with pytest.raises(ValueError, match="different pair sets"):
        paired_risk_difference(a, b, alpha=0.05)
    with pytest.raises(ValueError, match="different pair sets"):
        tost_paired(a, b, margin=0.1, alpha=0.05)
    with pytest.raises(ValueError, match="different pair sets"):
        paired_cochran_q({"m1": a, "m2": a, "m3": b}, alpha=0.05)


def test_paired_margin_test_refuses_subset_even_if_truncation_would_align() -> None:
    a = {i: float(k) for k, i in enumerate(ids(8))}
    b = {i: float(k) + 0.5 for k, i in enumerate(ids(7))}
    with pytest.raises(ValueError, match=r"1 pair ids only in 'a' \(e.g. \['p0007'\]\)"):
        paired_wilcoxon(a, b, alpha=0.05, alternative="two-sided", zero_method="wilcox",
                        p_method="asymptotic")
    with pytest.raises(ValueError, match="different pair sets"):
        paired_mean_difference(a, b, method="t", alpha=0.05, rng=None, n_resamples=None)


def test_align_pairs_is_order_independent() -> None:
    a = {"z": 1.0, "a": 2.0}
    b = {"a": 20.0, "z": 10.0}
    keys, (va, vb) = align_pairs(a, b)
    assert keys == ["a", "z"]
    assert va == [2.0, 1.0]
    assert vb == [20.0, 10.0]


def test_unpaired_refuses_shared_pairs() -> None:
    a = {"p1": True, "p2": False}
    b = {"p2": True, "p3": False}
    with pytest.raises(ValueError, match=r"share 1 pair ids.*p2.*paired"):
        unpaired_comparison(a, b, alpha=0.05)
    with pytest.raises(ValueError, match="share 1 pair ids"):
        tost_unpaired(a, b, margin=0.1, alpha=0.05)


# --- FR of 0 or 1, all-equal data: defined results or clear errors, never NaN ----------------


@pytest.mark.parametrize("count", [0, 25], ids=["fr0", "fr1"])
@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_extreme_rates_give_defined_intervals(count: int, method: str) -> None:
    r = proportion_interval(count, 25, method=method, alpha=0.05)  # type: ignore[arg-type]
    assert 0.0 <= r.low <= r.estimate <= r.high <= 1.0
    assert (r.low == 0.0) if count == 0 else (r.high == 1.0)
    dumps(r.to_json())


def test_mcnemar_without_discordant_pairs_has_p_one() -> None:
    a = dict.fromkeys(ids(20), True)
    r = paired_mcnemar(a, dict(a), alpha=0.05)
    assert r.test.p_value == 1.0
    assert r.test.statistic == 0.0
    assert r.test.direction == "none"
    assert r.test.reject is False
    dumps(r.to_json())


def test_cochran_q_all_concordant_is_null_with_reason() -> None:
    a = {i: k % 2 == 0 for k, i in enumerate(ids(12))}
    r = paired_cochran_q({"m1": a, "m2": dict(a), "m3": dict(a)}, alpha=0.05)
    assert r.test.statistic is None
    assert r.test.p_value is None
    assert r.test.reject is None
    assert r.test.undefined_reason is not None
    assert "concordant" in r.test.undefined_reason
    out = dumps(r.to_json())
    assert '"p_value": null' in out


def test_wilcoxon_all_zero_differences_is_null_with_reason() -> None:
    a = {i: 0.3 for i in ids(10)}
    r = paired_wilcoxon(a, dict(a), alpha=0.05, alternative="two-sided", zero_method="wilcox",
                        p_method="asymptotic")
    assert r.test.p_value is None
    assert r.test.undefined_reason is not None
    assert "zero" in r.test.undefined_reason
    dumps(r.to_json())


def test_wilcoxon_exact_refuses_zeros_and_ties() -> None:
    a = {i: float(k) for k, i in enumerate(ids(6))}
    b = {i: float(k) for k, i in enumerate(ids(6))}
    b["p0001"] = 5.0
    with pytest.raises(ValueError, match="zero differences"):
        paired_wilcoxon(a, b, alpha=0.05, alternative="two-sided", zero_method="wilcox",
                        p_method="exact")
    c = {i: float(k) + (1.0 if k % 2 else -1.0) for k, i in enumerate(ids(6))}
    with pytest.raises(ValueError, match="tied"):
        paired_wilcoxon(a, c, alpha=0.05, alternative="two-sided", zero_method="wilcox",
                        p_method="exact")


def test_wilcoxon_asymptotic_with_some_zeros_is_defined() -> None:
    a = {i: float(k) for k, i in enumerate(ids(12))}
    b = {i: float(k) - (0.0 if k < 3 else 0.1 * k) for k, i in enumerate(ids(12))}
    for zm in ("wilcox", "pratt", "zsplit"):
        r = paired_wilcoxon(a, b, alpha=0.05, alternative="larger", zero_method=zm,
                            p_method="asymptotic")
        assert r.test.p_value is not None
        assert r.test.p_value < 0.05
        assert r.test.direction == "a>b"
        assert r.n_nonzero == 9


def test_score_test_with_both_rates_zero_is_null_with_reason() -> None:
    r = unpaired_comparison_counts(0, 30, 0, 40, alpha=0.05)
    assert r.test.p_value is None
    assert r.test.undefined_reason is not None
    assert r.difference.low < 0.0 < r.difference.high
    dumps(r.to_json())
    r1 = unpaired_comparison_counts(30, 30, 40, 40, alpha=0.05)
    assert r1.test.p_value is None


def test_paired_risk_difference_with_all_ones_is_defined() -> None:
    a = dict.fromkeys(ids(15), True)
    r = paired_risk_difference(a, dict(a), alpha=0.05)
    assert r.estimate == 0.0
    assert r.low <= 0.0 <= r.high
    assert r.cohens_h == 0.0
    dumps(r.to_json())


@pytest.mark.parametrize("method", ["bootstrap-bca", "bootstrap-percentile", "t"])
def test_all_equal_values_give_a_flagged_point_interval(method: str) -> None:
    boot = method != "t"
    r = mean_interval([0.25] * 30, method=method, alpha=0.05,  # type: ignore[arg-type]
                      rng=np.random.default_rng(0) if boot else None,
                      n_resamples=999 if boot else None)
    assert (r.low, r.estimate, r.high) == (0.25, 0.25, 0.25)
    assert r.degenerate
    dumps(r.to_json())


def test_single_pair_mean_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 pairs"):
        mean_interval([0.3], method="t", alpha=0.05, rng=None, n_resamples=None)


def test_tost_at_extreme_rates_is_finite() -> None:
    a = dict.fromkeys(ids(40), False)
    r = tost_paired(a, dict(a), margin=0.1, alpha=0.05)
    assert r.equivalent
    dumps(r.to_json())
    b = dict.fromkeys(ids(40, "q"), False)
    r2 = tost_unpaired(a, b, margin=0.1, alpha=0.05)
    assert r2.p_lower == pytest.approx(r2.p_upper, abs=1e-12)
    dumps(r2.to_json())


# --- records validate themselves ------------------------------------------------------------


def test_record_refuses_nan_and_percentages() -> None:
    with pytest.raises(ValueError, match="finite"):
        ProportionInterval(estimate=math.nan, low=0.0, high=1.0, count=1, n=2, method="wilson",
                           alpha=0.05)
    with pytest.raises(ValueError, match="percentage"):
        ProportionInterval(estimate=50.0, low=40.0, high=60.0, count=1, n=2, method="wilson",
                           alpha=0.05)
    with pytest.raises(ValueError, match="contain its estimate"):
        ProportionInterval(estimate=0.5, low=0.6, high=0.9, count=1, n=2, method="wilson",
                           alpha=0.05)
    with pytest.raises(ValueError, match="count / n"):
        ProportionInterval(estimate=0.4, low=0.1, high=0.9, count=1, n=2, method="wilson",
                           alpha=0.05)


def test_undefined_statistic_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="undefined_reason"):
        TestResult(method="x", statistic=None, p_value=None, alternative="two-sided",
                   direction="none", n=3, alpha=0.05)
    with pytest.raises(ValueError, match="p_value"):
        TestResult(method="x", statistic=1.0, p_value=math.nan, alternative="two-sided",
                   direction="none", n=3, alpha=0.05)


def test_records_are_frozen() -> None:
    r = proportion_interval(1, 2, method="wilson", alpha=0.05)
    with pytest.raises(AttributeError, match="cannot assign"):
        r.low = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, math.nan, 5.0], ids=str)
def test_alpha_out_of_range_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        proportion_interval(1, 2, method="wilson", alpha=alpha)


@pytest.mark.parametrize("method", ["normal", "beta", "Wilson", "wils", "agresti_coull"])
def test_unknown_or_default_methods_are_refused(method: str) -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        proportion_interval(1, 2, method=method, alpha=0.05)  # type: ignore[arg-type]


def test_count_out_of_range_and_non_integer_refused() -> None:
    with pytest.raises(ValueError, match="0 <= count <= n"):
        proportion_interval(3, 2, method="wilson", alpha=0.05)
    with pytest.raises(TypeError, match="integer"):
        proportion_interval(1.0, 2, method="wilson", alpha=0.05)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer"):
        proportion_interval(True, 2, method="wilson", alpha=0.05)


def test_bound_side_must_be_named() -> None:
    with pytest.raises(ValueError, match="side"):
        proportion_bound(1, 2, side="two-sided", method="wilson", alpha=0.05)  # type: ignore[arg-type]


# --- bootstrap: explicit generator, deterministic -------------------------------------------


def test_bootstrap_requires_an_explicit_generator() -> None:
    with pytest.raises(TypeError, match="Generator"):
        mean_interval([0.1, 0.2, 0.4], method="bootstrap-bca", alpha=0.05, rng=None,
                      n_resamples=999)
    with pytest.raises(ValueError, match="rng=None"):
        mean_interval([0.1, 0.2, 0.4], method="t", alpha=0.05, rng=np.random.default_rng(0),
                      n_resamples=None)


def test_bootstrap_is_deterministic_given_the_generator() -> None:
    x = np.random.default_rng(7).normal(0.2, 1.0, size=60)
    r1 = mean_interval(x, method="bootstrap-bca", alpha=0.05, rng=np.random.default_rng(11),
                       n_resamples=999)
    r2 = mean_interval(x, method="bootstrap-bca", alpha=0.05, rng=np.random.default_rng(11),
                       n_resamples=999)
    assert r1 == r2
    assert r1.low is not None
    assert r1.high is not None
    assert r1.low < r1.estimate < r1.high


def test_bootstrap_bca_close_to_t_on_a_large_normal_sample() -> None:
    x = np.random.default_rng(3).normal(0.5, 1.0, size=400)
    boot = mean_interval(x, method="bootstrap-bca", alpha=0.05, rng=np.random.default_rng(4),
                         n_resamples=2000)
    t = mean_interval(x, method="t", alpha=0.05, rng=None, n_resamples=None)
    assert boot.low == pytest.approx(t.low, abs=0.02)
    assert boot.high == pytest.approx(t.high, abs=0.02)


def test_paired_mean_difference_uses_per_pair_differences() -> None:
    a = {i: float(k) for k, i in enumerate(ids(10))}
    b = {i: float(k) - 0.5 for k, i in enumerate(ids(10))}
    r = paired_mean_difference(a, b, method="t", alpha=0.05, rng=None, n_resamples=None)
    assert r.degenerate
    assert r.estimate == 0.5


# --- multiplicity, power ---------------------------------------------------------------------


def test_family_refuses_undefined_p_values_and_empty_family() -> None:
    with pytest.raises(ValueError, match="undefined p-value"):
        adjust_family({"c1": 0.01, "c2": None}, method="holm", alpha=0.05)
    with pytest.raises(ValueError, match="empty family"):
        adjust_family({}, method="holm", alpha=0.05)
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_family({"c1": 0.01}, method="hs", alpha=0.05)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        adjust_family({"c1": 1.5}, method="holm", alpha=0.05)


def test_family_keeps_declaration_order() -> None:
    fam = adjust_family({"z": 0.04, "a": 0.001}, method="holm", alpha=0.05)
    assert fam.claim_ids == ("z", "a")
    assert fam.decision("a")
    assert fam.decision("z")
    dumps(fam.to_json())


def test_power_of_equal_rates_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="equal rates"):
        pairs_needed_unpaired(0.2, 0.2, alpha=0.05, power=0.8, alternative="two-sided")
    with pytest.raises(ValueError, match="equal rates"):
        pairs_needed_paired(0.1, 0.1, alpha=0.05, power=0.8)
    assert achieved_power_paired(0.0, 0.0, n=100, alpha=0.05) == 0.0


# --- score statistics: independent checks ----------------------------------------------------


@pytest.mark.parametrize("cells", [(3, 7, 5, 15), (20, 9, 1, 20), (0, 4, 0, 6)], ids=str)
@pytest.mark.parametrize("delta0", [-0.2, 0.1, 0.3])
def test_tango_restricted_mle_maximises_the_likelihood(
    cells: tuple[int, int, int, int], delta0: float
) -> None:
    t = PairedTable(*cells)
    n, b, c = t.n, t.n_a_only, t.n_b_only

    def nll(q: float) -> float:
        p12 = q + delta0
        rest = 1.0 - 2.0 * q - delta0
        terms = [(b, p12), (c, q), (n - b - c, rest)]
        return -sum(k * math.log(p) for k, p in terms if k > 0)

    lo = max(0.0, -delta0) + 1e-15
    hi = (1.0 - delta0) / 2.0 - 1e-15
    q = float(optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-14}).x)
    want = (b - c - n * delta0) / math.sqrt(n * (2 * q + delta0 * (1 - delta0)))
    assert tango_score_z(t, delta0=delta0) == pytest.approx(want, abs=1e-6)


def test_tango_at_zero_is_mcnemar_z() -> None:
    t = PairedTable(n_both=4, n_a_only=9, n_b_only=3, n_neither=10)
    assert tango_score_z(t, delta0=0.0) == pytest.approx((9 - 3) / math.sqrt(12), abs=1e-12)


@pytest.mark.parametrize("counts", [(3, 50, 7, 60), (56, 70, 48, 80), (1, 9, 8, 12)], ids=str)
def test_pooled_score_matches_statsmodels_at_zero(counts: tuple[int, int, int, int]) -> None:
    # statsmodels 0.15.0; the value == 0 path (pooled estimate) is unaffected by issue #10269
    res = sm_proportion.test_proportions_2indep(*counts, value=0.0, method="score", compare="diff",
                                  alternative="two-sided", correction=False, return_results=True)
    assert farrington_manning_z(*counts, delta0=0.0) == pytest.approx(res.statistic, abs=1e-12)
    r = unpaired_comparison_counts(*counts, alpha=0.05)
    assert r.test.p_value == pytest.approx(res.pvalue, abs=1e-12)


def test_statistics_never_imports_torch() -> None:
    code = "import sys, faceattr.stats; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
