# Every claim family passes on healthy records and fails on a planted defect.
from __future__ import annotations

from dataclasses import replace

import pytest

from faceattr.claims import ClaimSpec
from faceattr.falsification.engine import failed_record
from faceattr.records import PairRecord
from tests.helpers import judge, pair, records


def _trivial(method: str, n: int) -> dict[str, list[PairRecord]]:
    return {method: records(method, n_falsified=30, n_passed=170 - n, n_trivial=n)}


def test_uniformity_passes_with_few_trivial_maps_and_fails_with_many() -> None:
    params = {"method": "grad_cam", "max_share": 0.05}
    assert judge("uniformity", params, _trivial("grad_cam", 0)).passed
    # planted: 84% uniform Grad-CAM maps (PITFALLS.md #4)
    result = judge("uniformity", params, _trivial("grad_cam", 168))
    assert not result.passed
    assert "168/200 trivial" in result.detail


def test_uniformity_is_judged_on_the_upper_bound() -> None:
    # 4/200 = 0.02 <= 0.05 but the Wilson upper bound is 0.050287 > 0.05 (by hand, z = 1.96:
    # (0.02 + z^2/400 + z sqrt(0.02 * 0.98 / 200 + z^2 / 160000)) / (1 + z^2 / 200))
    result = judge("uniformity", {"method": "m", "max_share": 0.05}, _trivial("m", 4))
    assert not result.passed
    assert result.observed == pytest.approx(0.050287, abs=1e-6)
    on_estimate = judge("uniformity", {"method": "m", "max_share": 0.05, "on": "estimate"},
                        _trivial("m", 4))
    assert on_estimate.passed


def test_attrition_fails_when_errors_pile_up() -> None:
    params = {"method": "lime", "max_share": 0.02}
    assert judge("attrition", params, {"lime": records("lime", n_falsified=10,
                                                       n_passed=190)}).passed
    rows = records("lime", n_falsified=10, n_passed=150, n_error=40)  # broad except (PITFALLS #3)
    assert not judge("attrition", params, {"lime": rows}).passed


def _target_errors(method: str, n: int) -> list[PairRecord]:
    rows = records(method, n_falsified=0, n_passed=200 - n)
    return rows + [failed_record(pair(200 + i), "m", method, "error:target",
                                 "gradient norm 1e-11 < 1e-06", 1.0, "simple")
                   for i in range(n)]


def test_target_sanity_fails_on_a_constant_target() -> None:
    params = {"method": "saliency", "max_share": 0.0, "on": "estimate"}
    assert judge("target_sanity", params, {"saliency": _target_errors("saliency", 0)}).passed
    # planted: the norm of a unit embedding was explained (PITFALLS.md #5)
    assert not judge("target_sanity", params, {"saliency": _target_errors("saliency", 200)}
                     ).passed


def test_degenerate_metric_fails_unless_exempted() -> None:
    healthy = {"a": records("a", n_falsified=50, n_passed=150)}
    params = {"metric": "margin_rad"}
    assert judge("not_degenerate", params, healthy).passed
    # planted: every pair has the same margin (a defaulted lookup's signature, PITFALLS #1)
    degenerate = healthy | {"b": records("b", n_falsified=80, n_passed=0)}
    result = judge("not_degenerate", params, degenerate)
    assert not result.passed
    assert "b (margin_rad" in result.detail
    exempted = {**params, "exempt": ["b"], "reason": "a perfect control"}
    assert judge("not_degenerate", exempted, degenerate).passed


def test_exemption_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="exempt methods need a reason"):
        judge("not_degenerate", {"metric": "margin_rad", "exempt": ["a"]},
              {"a": records("a", n_falsified=2, n_passed=2)})


def test_distinct_maps_fails_on_a_renamed_copy() -> None:
    base = records("grad_cam", n_falsified=5, n_passed=5)
    assert judge("distinct_maps", {}, {"grad_cam": base,
                                      "saliency": records("saliency", n_falsified=5,
                                                          n_passed=5)}).passed
    # planted: "biometric" Grad-CAM, identical maps under another name (PITFALLS.md #20)
    copy = [replace(r, method="biometric_grad_cam") for r in base]
    result = judge("distinct_maps", {}, {"grad_cam": base, "biometric_grad_cam": copy})
    assert not result.passed
    assert "biometric_grad_cam == grad_cam" in result.detail


def test_distinct_maps_fails_on_a_rescaled_copy() -> None:
    # issue #21 item 4: a byte digest misses a positively rescaled copy; its regions do not
    import hashlib

    base = records("grad_cam", n_falsified=5, n_passed=5)
    # planted: Grad-CAM times a positive per-pair scalar — other bytes, the same regions
    scaled = [replace(r, method="biometric_grad_cam",
                      map_sha256=hashlib.sha256(f"scaled|{r.pair_id}".encode()).hexdigest(),
                      map_entropy_norm=(r.map_entropy_norm or 0.0) + 2e-6)
              for r in base]
    result = judge("distinct_maps", {}, {"grad_cam": base, "biometric_grad_cam": scaled})
    assert not result.passed
    assert "biometric_grad_cam ~ grad_cam: the same S_high and S_low on 10/10 shared pairs" \
        in result.detail


def _sharing(n_same: int) -> dict[str, list[PairRecord]]:
    """Two methods with distinct maps that select the same regions on ``n_same`` of 10 pairs."""
    a = records("a", n_falsified=5, n_passed=5)
    b = [replace(r, regions_sha256=a[i].regions_sha256) if i < n_same else r
         for i, r in enumerate(records("b", n_falsified=5, n_passed=5))]
    return {"a": a, "b": b}


def test_distinct_maps_tolerates_a_few_shared_regions_and_the_share_is_declared() -> None:
    # float rounding may reorder near-tied boundary pixels of a copy on a few pairs, and two
    # different maps may (rarely) select one region set: the share decides
    assert judge("distinct_maps", {}, _sharing(0)).passed
    assert judge("distinct_maps", {}, _sharing(4)).passed
    flagged = judge("distinct_maps", {}, _sharing(5))
    assert not flagged.passed
    assert "the same S_high and S_low on 5/10 shared pairs" in flagged.detail
    assert not judge("distinct_maps", {"min_same_regions_share": 0.9}, _sharing(9)).passed
    assert judge("distinct_maps", {"min_same_regions_share": 0.9}, _sharing(8)).passed
    # trivial records have no regions: they neither count nor make the share
    trivial = {m: records(m, n_falsified=0, n_passed=2, n_trivial=8) for m in ("a", "b")}
    assert judge("distinct_maps", {}, trivial).passed


def test_separation_passes_on_a_real_difference_and_fails_on_none() -> None:
    params = {"better": "geodesic_ig", "worse": "grad_cam"}
    rows = {"geodesic_ig": records("geodesic_ig", n_falsified=20, n_passed=180),
            "grad_cam": records("grad_cam", n_falsified=150, n_passed=50)}
    result = judge("fr_separation", params, rows)
    assert result.passed, result.detail
    assert result.interval_high is not None
    assert result.interval_high < 0
    # planted: a method whose FR does not differ
    same = {"geodesic_ig": records("geodesic_ig", n_falsified=100, n_passed=100),
            "grad_cam": records("grad_cam", n_falsified=100, n_passed=100)}
    assert not judge("fr_separation", params, same).passed
    # the wrong direction is not a pass either
    assert not judge("fr_separation", {"better": "grad_cam", "worse": "geodesic_ig"},
                     rows).passed


def test_separation_is_holm_corrected_over_the_family() -> None:
    # 18 vs 9 discordant pairs: McNemar p = 0.122 alone is not significant either way; a
    # sharper sibling does not rescue it, and the family is corrected (p_holm >= p_raw)
    rows = {"a": records("a", n_falsified=0, n_passed=200),
            "b": records("b", n_falsified=12, n_passed=188),
            "c": records("c", n_falsified=150, n_passed=50)}
    sibling = ClaimSpec(id="s2", kind="fr_separation", params=(("better", "a"), ("worse", "c")))
    alone = judge("fr_separation", {"better": "a", "worse": "b"}, rows)
    family = judge("fr_separation", {"better": "a", "worse": "b"}, rows, siblings=(sibling,))
    assert alone.passed  # 0 vs 12 discordant: exact p = 2 * 0.5^12 = 0.00049
    assert "Holm over 2 claim(s)" in family.statement
    raw = float(family.detail.split("McNemar p = ")[1].split(",")[0])
    holm = float(family.detail.split("Holm p = ")[1].split(";")[0])
    assert raw == pytest.approx(2 * 0.5 ** 12, rel=1e-3)
    # Holm over two claims: the sibling's p (~1e-39) is smallest, so this one is multiplied
    # by 1 — but never below its raw p; alone it is multiplied by nothing
    assert holm >= raw


def test_separation_refuses_different_pair_sets() -> None:
    rows = {"a": records("a", n_falsified=0, n_passed=10),
            "b": records("b", n_falsified=0, n_passed=12)}
    with pytest.raises(ValueError, match="pair"):
        judge("fr_separation", {"better": "a", "worse": "b"}, rows)


def _complete(method: str, residual: float) -> list[PairRecord]:
    return [replace(r, convergence_delta=residual, attribution_sum=0.5)
            for r in records(method, n_falsified=10, n_passed=90)]


def test_completeness_fails_with_too_few_steps() -> None:
    params = {"method": "integrated_gradients", "rtol": 0.05, "atol": 1e-3, "min_share": 0.95}
    assert judge("completeness", params,
                 {"integrated_gradients": _complete("integrated_gradients", 0.004)}).passed
    # planted: an IG with too few steps leaves a residual of 40% of the score change
    assert not judge("completeness", params,
                     {"integrated_gradients": _complete("integrated_gradients", 0.2)}).passed


def test_completeness_on_a_method_without_delta_raises() -> None:
    with pytest.raises(ValueError, match="carry no completeness delta"):
        judge("completeness", {"method": "s", "rtol": 0.1, "atol": 0.0, "min_share": 0.9},
              {"s": records("s", n_falsified=1, n_passed=1)})


def test_k_sufficiency_fails_when_k_is_below_the_hoeffding_bound() -> None:
    rows = {"m": records("m", n_falsified=3, n_passed=3)}  # K = 2 draws per region
    assert not judge("k_sufficiency", {"eps_rad": 0.1, "delta": 0.05}, rows).passed
    # pi^2 ln(2 / 0.5) / (2 * 3^2) = 0.76 -> K >= 1
    assert judge("k_sufficiency", {"eps_rad": 3.0, "delta": 0.5}, rows).passed


def _determinism(**changes: object) -> object:
    from faceattr.runfolder.determinism import DeterminismResult

    base = DeterminismResult(n_pairs=4, n_lines_compared=36, identical_across_processes=True,
                             first_difference=None, stochastic_methods=("random",),
                             seed_changes_stochastic=True)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "passes"), [
    ({}, True),
    # planted: a result depends on which methods ran before it (PITFALLS.md #14)
    ({"identical_across_processes": False, "first_difference": "line 7"}, False),
    # planted: the "random" control ignores its seed (a hidden global stream)
    ({"seed_changes_stochastic": False}, False),
])
def test_determinism_claim(changes: dict[str, object], passes: bool) -> None:
    from faceattr.claims import ClaimSpec, RunArtefacts, evaluate_claim
    from tests.helpers import run

    rows = {"random": records("random", n_falsified=1, n_passed=1)}
    spec = ClaimSpec(id="d", kind="determinism", params=())
    artefacts = RunArtefacts(summary=run(rows), records=rows["random"], claims=(spec,),
                             determinism=_determinism(**changes))  # type: ignore[arg-type]
    assert evaluate_claim(spec, artefacts).passed is passes


def test_determinism_claim_without_the_stage_fails() -> None:
    result = judge("determinism", {}, {"m": records("m", n_falsified=1, n_passed=1)})
    assert not result.passed
    assert "declare [determinism]" in result.detail


@pytest.mark.parametrize(("code", "passes"), [(0, True), (1, False), (2, False), (4, False)])
def test_regression_claim_follows_the_comparison(code: int, passes: bool) -> None:
    from faceattr.claims import ClaimSpec, RunArtefacts, evaluate_claim
    from tests.helpers import run

    rows = {"m": records("m", n_falsified=1, n_passed=1)}
    spec = ClaimSpec(id="r", kind="regression", params=())
    comparison = {"exit_code": code, "exit_reasons": [] if code == 0 else ["verdict flips"],
                  "margin": 0.05}
    artefacts = RunArtefacts(summary=run(rows), records=rows["m"], claims=(spec,),
                             comparison=comparison)
    assert evaluate_claim(spec, artefacts).passed is passes
    assert not judge("regression", {}, rows).passed  # no baseline declared: not a pass
