from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceattr.stats import (
    adjust_family,
    mean_interval,
    newcombe_unpaired_interval,
    paired_cochran_q,
    paired_mcnemar,
    paired_risk_difference,
    proportion_bound,
    proportion_interval,
    tost_paired,
    tost_unpaired_counts,
    unpaired_comparison_counts,
)

METHODS = st.sampled_from(["wilson", "clopper-pearson"])
ALPHAS = st.sampled_from([0.01, 0.05, 0.1, 0.2])


@st.composite
def count_n(draw: st.DrawFn, max_n: int = 5000) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=max_n))
    return draw(st.integers(min_value=0, max_value=n)), n


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, int, int, int]:
    cells = draw(st.lists(st.integers(min_value=0, max_value=60), min_size=4, max_size=4))
    if sum(cells) == 0:
        cells[0] = 1
    return cells[0], cells[1], cells[2], cells[3]


def arms(a: int, b: int, c: int, d: int) -> tuple[dict[str, bool], dict[str, bool]]:
    xa: dict[str, bool] = {}
    xb: dict[str, bool] = {}
    i = 0
    for n, va, vb in ((a, True, True), (b, True, False), (c, False, True), (d, False, False)):
        for _ in range(n):
            xa[f"p{i}"], xb[f"p{i}"] = va, vb
            i += 1
    return xa, xb


@given(cn=count_n(), method=METHODS, alpha=ALPHAS)
def test_interval_contains_estimate_and_lies_in_unit_interval(
    cn: tuple[int, int], method: str, alpha: float
) -> None:
    r = proportion_interval(cn[0], cn[1], method=method, alpha=alpha)  # type: ignore[arg-type]
    assert 0.0 <= r.low <= r.estimate <= r.high <= 1.0
    json.dumps(r.to_json(), allow_nan=False)


@given(cn=count_n(), method=METHODS, alpha=ALPHAS, side=st.sampled_from(["upper", "lower"]))
def test_one_sided_bound_on_the_right_side(
    cn: tuple[int, int], method: str, alpha: float, side: str
) -> None:
    r = proportion_bound(cn[0], cn[1], side=side, method=method, alpha=alpha)  # type: ignore[arg-type]
    two = proportion_interval(cn[0], cn[1], method=method, alpha=alpha)  # type: ignore[arg-type]
    if side == "upper":
        assert r.estimate <= r.bound <= two.high + 1e-12
    else:
        assert two.low - 1e-12 <= r.bound <= r.estimate


@given(
    num=st.integers(min_value=0, max_value=20),
    den=st.integers(min_value=1, max_value=20),
    k=st.integers(min_value=1, max_value=6),
    method=METHODS,
)
def test_width_shrinks_as_n_grows_at_fixed_rate(num: int, den: int, k: int, method: str) -> None:
    if num > den:
        num, den = den, num
    small = proportion_interval(num * k, den * k, method=method, alpha=0.05)  # type: ignore[arg-type]
    big = proportion_interval(num * 4 * k, den * 4 * k, method=method, alpha=0.05)  # type: ignore[arg-type]
    assert big.width <= small.width + 1e-12
    if 0 < num < den:
        assert big.width < small.width


@given(cn=count_n(), method=METHODS)
def test_interval_reflects_under_swapping_success_and_failure(
    cn: tuple[int, int], method: str
) -> None:
    c, n = cn
    r = proportion_interval(c, n, method=method, alpha=0.05)  # type: ignore[arg-type]
    s = proportion_interval(n - c, n, method=method, alpha=0.05)  # type: ignore[arg-type]
    assert r.low == pytest.approx(1.0 - s.high, abs=1e-9)
    assert r.high == pytest.approx(1.0 - s.low, abs=1e-9)


@given(t=tables())
def test_mcnemar_symmetric_under_swapping_arms(t: tuple[int, int, int, int]) -> None:
    a, b = arms(*t)
    ab = paired_mcnemar(a, b, alpha=0.05)
    ba = paired_mcnemar(b, a, alpha=0.05)
    assert ab.test.p_value == ba.test.p_value
    assert ab.test.statistic == ba.test.statistic
    flip = {"a>b": "a<b", "a<b": "a>b", "none": "none"}
    assert ba.test.direction == flip[ab.test.direction]


@given(t=tables(), extra_both=st.integers(0, 200), extra_neither=st.integers(0, 200))
def test_mcnemar_ignores_concordant_pairs(
    t: tuple[int, int, int, int], extra_both: int, extra_neither: int
) -> None:
    a1, b1 = arms(*t)
    a2, b2 = arms(t[0] + extra_both, t[1], t[2], t[3] + extra_neither)
    r1, r2 = paired_mcnemar(a1, b1, alpha=0.05), paired_mcnemar(a2, b2, alpha=0.05)
    assert r1.test.p_value == r2.test.p_value
    assert r1.test.statistic == r2.test.statistic


@given(t=tables(), alpha=ALPHAS)
def test_paired_risk_difference_antisymmetric_and_contains_estimate(
    t: tuple[int, int, int, int], alpha: float
) -> None:
    a, b = arms(*t)
    ab = paired_risk_difference(a, b, alpha=alpha)
    ba = paired_risk_difference(b, a, alpha=alpha)
    assert -1.0 <= ab.low <= ab.estimate <= ab.high <= 1.0
    assert ab.low == pytest.approx(-ba.high, abs=1e-9)
    assert ab.high == pytest.approx(-ba.low, abs=1e-9)
    assert ab.cohens_h == pytest.approx(-ba.cohens_h, abs=1e-12)


@given(a=count_n(500), b=count_n(500), alpha=ALPHAS)
def test_unpaired_symmetric_under_swapping_arms(
    a: tuple[int, int], b: tuple[int, int], alpha: float
) -> None:
    ab = unpaired_comparison_counts(a[0], a[1], b[0], b[1], alpha=alpha)
    ba = unpaired_comparison_counts(b[0], b[1], a[0], a[1], alpha=alpha)
    d1, d2 = ab.difference, ba.difference
    assert -1.0 <= d1.low <= d1.estimate <= d1.high <= 1.0
    assert d1.low == pytest.approx(-d2.high, abs=1e-9)
    assert d1.high == pytest.approx(-d2.low, abs=1e-9)
    if ab.test.p_value is None:
        assert ba.test.p_value is None
    else:
        assert ab.test.p_value == pytest.approx(ba.test.p_value, abs=1e-12)
    json.dumps(ab.to_json(), allow_nan=False)


@given(a=count_n(300), b=count_n(300), margin=st.sampled_from([0.05, 0.1, 0.2]))
def test_tost_unpaired_symmetric_and_json_safe(
    a: tuple[int, int], b: tuple[int, int], margin: float
) -> None:
    ab = tost_unpaired_counts(a[0], a[1], b[0], b[1], margin=margin, alpha=0.05)
    ba = tost_unpaired_counts(b[0], b[1], a[0], a[1], margin=margin, alpha=0.05)
    assert ab.p_lower == pytest.approx(ba.p_upper, abs=1e-9)
    assert ab.p_value == pytest.approx(ba.p_value, abs=1e-9)
    json.dumps(ab.to_json(), allow_nan=False)


@given(t=tables(), margin=st.sampled_from([0.05, 0.1, 0.2, 0.5]))
def test_tost_paired_symmetric_and_consistent(t: tuple[int, int, int, int], margin: float) -> None:
    a, b = arms(*t)
    ab = tost_paired(a, b, margin=margin, alpha=0.05)
    ba = tost_paired(b, a, margin=margin, alpha=0.05)
    assert ab.p_lower == pytest.approx(ba.p_upper, abs=1e-9)
    assert ab.equivalent == ba.equivalent
    # equivalence can only be declared when the estimate lies inside the margin
    if ab.equivalent:
        assert -margin < ab.estimate < margin
    json.dumps(ab.to_json(), allow_nan=False)


@given(t=tables())
def test_cochran_q_on_two_arms_is_mcnemar_chi_square(t: tuple[int, int, int, int]) -> None:
    a, b = arms(*t)
    q = paired_cochran_q({"a": a, "b": b}, alpha=0.05)
    disc = t[1] + t[2]
    if disc == 0:
        assert q.test.statistic is None
        assert q.test.undefined_reason
    else:
        assert q.test.statistic == pytest.approx((t[1] - t[2]) ** 2 / disc, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(ps=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12))
def test_adjusted_p_values_dominate_raw_and_holm_dominates_bh(ps: list[float]) -> None:
    fam = {f"c{i}": p for i, p in enumerate(ps)}
    holm = adjust_family(fam, method="holm", alpha=0.05)
    bh = adjust_family(fam, method="benjamini-hochberg", alpha=0.05)
    for p, qh, qb in zip(ps, holm.adjusted, bh.adjusted, strict=True):
        assert p <= qb + 1e-15
        assert qb <= qh + 1e-12
        assert qh <= 1.0
    assert sum(holm.reject) <= sum(bh.reject)


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-5, max_value=5), min_size=2, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_bootstrap_interval_defined_or_flagged_never_nan(values: list[float], seed: int) -> None:
    r = mean_interval(values, method="bootstrap-bca", alpha=0.05,
                      rng=np.random.default_rng(seed), n_resamples=200)
    json.dumps(r.to_json(), allow_nan=False)
    if r.low is not None and r.high is not None:
        assert r.low <= r.high
    else:
        assert r.undefined_reason


@given(c=st.integers(0, 50), n_extra=st.integers(0, 50))
def test_newcombe_unpaired_contains_estimate(c: int, n_extra: int) -> None:
    r = newcombe_unpaired_interval(c, c + n_extra + 1, n_extra, c + n_extra + 3, alpha=0.05)
    assert r.low <= r.estimate <= r.high
