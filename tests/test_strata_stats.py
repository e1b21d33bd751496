# The stratified analysis' statistics (faceattr.stats.strata) on known inputs: a planted
# stratum is found, with its direction, and nothing else; the exact tests match scipy and hand
# counts; the interaction's estimates are the paired differences and its permutation p-value
# its exact null probability; null data reject at most at alpha.
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from faceattr.io import dumps_strict
from faceattr.rng import numpy_generator
from faceattr.stats.strata import StrataAnalysis, analyse_strata, analysis_from_json

N = 200
PAIRS = [f"p{i:03d}" for i in range(N)]
LEVELS = {"occluder": ("no", "yes"), "light": ("low", "mid", "high")}


def _labels(seed: int) -> dict[str, dict[str, str | None]]:
    rng = numpy_generator(seed, "labels")
    occ, light = rng.random(N) < 0.4, rng.integers(0, 3, N)
    return {"occluder": {p: ("yes" if o else "no") for p, o in zip(PAIRS, occ, strict=True)},
            "light": {p: LEVELS["light"][int(k)] for p, k in zip(PAIRS, light, strict=True)}}


def _bernoulli(seed: int, key: str, rate: float) -> dict[str, bool]:
    draws = numpy_generator(seed, "outcome", key).random(N)
    return {p: bool(u < rate) for p, u in zip(PAIRS, draws, strict=True)}


def _analyse(labels: dict[str, dict[str, str | None]],
             outcomes: dict[tuple[str, str], dict[str, bool]],
             interactions: tuple[tuple[str, str], ...] = (), min_pairs: int = 10,
             seed: int = 0) -> StrataAnalysis:
    return analyse_strata(labels, LEVELS, outcomes, interactions=interactions, alpha=0.05,
                          min_stratum_pairs=min_pairs, n_resamples=999,
                          interval_method="wilson",
                          rng_for=lambda key: numpy_generator(seed, "strata", key))


def _planted(seed: int = 0) -> tuple[dict[str, dict[str, str | None]],
                                     dict[tuple[str, str], dict[str, bool]]]:
    labels = _labels(seed)
    coin = _bernoulli(seed, "coin", 0.5)
    planted = {p: labels["occluder"][p] == "yes" and coin[p] for p in PAIRS}
    oracle = dict.fromkeys(PAIRS, False)
    return labels, {("falsified", "planted"): planted, ("falsified", "oracle"): oracle,
                    ("falsified", "random"): _bernoulli(seed, "random", 0.5)}


def test_the_planted_stratum_is_found_with_its_direction_and_nothing_else() -> None:
    labels, outcomes = _planted()
    result = _analyse(labels, outcomes, interactions=(("planted", "oracle"),))
    flagged = [(c.method, c.covariate, c.stratum, c.flag) for c in result.flagged()]
    assert flagged == [("planted", "occluder", "yes", "higher")]
    (het,) = [h for h in result.heterogeneity if h.reject]
    assert (het.method, het.covariate) == ("planted", "occluder")
    inter = {i.covariate: i for i in result.interactions}
    assert inter["occluder"].reject
    assert not inter["light"].reject
    assert inter["occluder"].differences[0] == 0.0
    assert inter["occluder"].differences[1] > 0.3


def test_removing_the_plant_removes_the_flag() -> None:
    # the planted defect's negative: the same analysis without the dependence flags nothing
    labels, outcomes = _planted()
    outcomes[("falsified", "planted")] = _bernoulli(0, "unplanted", 0.2)
    assert _analyse(labels, outcomes).flagged() == []


def test_two_strata_use_fishers_exact_test_and_more_use_freeman_halton() -> None:
    labels, outcomes = _planted()
    result = _analyse(labels, outcomes)
    het = {(h.method, h.covariate): h for h in result.heterogeneity}
    h = het[("planted", "occluder")]
    table = [[c.rate.count, c.n - c.rate.count] for c in h.cells]  # type: ignore[union-attr]
    assert h.test.method == "fisher-exact"
    assert h.test.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-12)
    counts = {s: [0, 0] for s in ("no", "yes")}
    for p in PAIRS:
        counts[labels["occluder"][p]][0] += 1  # type: ignore[index]
        counts[labels["occluder"][p]][1] += outcomes[("falsified", "planted")][p]  # type: ignore[index]
    assert [[k, n - k] for n, k in counts.values()] == table
    assert het[("random", "light")].test.method == "fisher-freeman-halton-monte-carlo-999"


def test_holm_is_applied_over_each_family() -> None:
    labels, outcomes = _planted()
    result = _analyse(labels, outcomes)
    raw = sorted(c.test.p_value for c in result.contrasts)  # type: ignore[type-var]
    smallest = min(result.contrasts, key=lambda c: c.test.p_value)  # type: ignore[arg-type,return-value]
    assert smallest.p_holm == pytest.approx(min(1.0, raw[0] * len(raw)))
    assert all(c.p_holm >= c.test.p_value for c in result.contrasts)  # type: ignore[operator]


def test_a_constant_outcome_has_p_one_not_an_undefined_test() -> None:
    labels, outcomes = _planted()
    result = _analyse(labels, outcomes)
    for h in result.heterogeneity:
        if h.method == "oracle":
            assert h.test.p_value == 1.0
            assert h.test.statistic == 1.0


def test_small_strata_are_shown_but_not_tested() -> None:
    labels, outcomes = _planted()
    labels["occluder"] = {p: ("yes" if i < 5 else "no") for i, p in enumerate(PAIRS)}
    result = _analyse(labels, outcomes)
    h = next(h for h in result.heterogeneity if h.covariate == "occluder")
    assert [c.tested for c in h.cells] == [True, False]
    assert h.test.p_value is None
    assert "fewer than 2 strata" in str(h.test.undefined_reason)
    assert h.p_holm is None


def test_undefined_covariates_are_counted_not_guessed() -> None:
    labels, outcomes = _planted()
    labels["light"] = dict.fromkeys(PAIRS)
    result = _analyse(labels, outcomes)
    h = next(h for h in result.heterogeneity if h.covariate == "light")
    assert h.n_undefined == N
    assert all(c.n == 0 and c.rate is None for c in h.cells)
    assert h.test.undefined_reason is not None


def test_gee_interaction_matches_the_per_stratum_paired_differences() -> None:
    labels, outcomes = _planted()
    result = _analyse(labels, outcomes, interactions=(("random", "oracle"),))
    inter = next(i for i in result.interactions if i.covariate == "light")
    for stratum, diff in zip(inter.strata, inter.differences, strict=True):
        mine = [p for p in PAIRS if labels["light"][p] == stratum]
        assert diff == pytest.approx(np.mean([outcomes[("falsified", "random")][p]
                                              for p in mine]))
    assert inter.test.df == 2.0
    assert inter.gee.method == "gee-lpm-wald-bias-reduced"
    assert inter.test.method == "permutation-paired-difference-999"


def test_the_permutation_interaction_has_its_exact_null_probability() -> None:
    # 60 pairs in two strata of 30; the methods disagree on two pairs, both in stratum "yes".
    # Under permutation both land in one stratum with probability 2 * C(30,2)/C(60,2) = 0.4915
    # (the between-strata SS is the same for "both in yes" and "both in no").
    pairs = PAIRS[:60]
    labels = {"occluder": {p: ("yes" if i % 2 else "no") for i, p in enumerate(pairs)},
              "light": dict.fromkeys(pairs, "low")}
    disagree = {pairs[1], pairs[3]}
    outcomes = {("falsified", "a"): {p: p in disagree for p in pairs},
                ("falsified", "b"): dict.fromkeys(pairs, False)}
    result = analyse_strata(labels, LEVELS, outcomes, interactions=(("a", "b"),), alpha=0.05,
                            min_stratum_pairs=10, n_resamples=20_000, interval_method="wilson",
                            rng_for=lambda key: numpy_generator(0, "strata", key))
    inter = next(i for i in result.interactions if i.covariate == "occluder")
    assert inter.test.p_value == pytest.approx(2 * 435 / 1770, abs=0.015)


def test_identical_methods_have_an_undefined_interaction() -> None:
    labels, outcomes = _planted()
    outcomes[("falsified", "copy")] = dict(outcomes[("falsified", "random")])
    result = _analyse(labels, outcomes, interactions=(("random", "copy"),))
    assert all(i.test.p_value is None and "same on every pair" in str(i.test.undefined_reason)
               for i in result.interactions)


def test_mismatched_pair_sets_raise() -> None:
    labels, outcomes = _planted()
    outcomes[("falsified", "short")] = {p: False for p in PAIRS[:-1]}
    with pytest.raises(ValueError, match="same pairs"):
        _analyse(labels, outcomes)


def test_the_json_round_trips_and_refuses_an_edited_flag() -> None:
    labels, outcomes = _planted()
    row = _analyse(labels, outcomes, interactions=(("planted", "oracle"),)).to_json()
    dumps_strict(row)  # no NaN anywhere
    assert analysis_from_json(row).to_json() == row
    row["contrasts"][0]["flag"] = "lower" if row["contrasts"][0]["flag"] != "lower" else None
    with pytest.raises(ValueError, match="round-trip"):
        analysis_from_json(row)


def test_null_data_flag_at_most_alpha_of_the_time() -> None:
    # 20 seeds of covariate-free outcomes: the family-wise rate of any flag stays <= alpha
    # (Holm; Fisher's test is conservative). Deterministic: every draw is keyed.
    hits = 0
    for seed in range(20):
        labels = _labels(seed)
        outcomes = {("falsified", f"m{r}"): _bernoulli(seed, f"m{r}", r) for r in (0.1, 0.5)}
        hits += bool(_analyse(labels, outcomes, seed=seed).flagged())
    assert hits <= 1
