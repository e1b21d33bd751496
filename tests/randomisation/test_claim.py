from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from faceattr.claims import ClaimResult, ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.claims.registry import parse_claim
from faceattr.config import ProtocolError
from faceattr.randomisation.stage import RandomisationResult
from tests.helpers import records, run
from tests.randomisation.common import hand_result

METHOD_IDS = ("broken", "edge", "random", "saliency")


def _judge(params: dict[str, Any], result: RandomisationResult | None) -> ClaimResult:
    spec = ClaimSpec(id="c", kind="randomisation", params=tuple(sorted(params.items())))
    by_method = {m: records(m, n_falsified=1, n_passed=1) for m in METHOD_IDS}
    artefacts = RunArtefacts(summary=run(by_method),
                             records=[r for rows in by_method.values() for r in rows],
                             claims=(spec,), randomisation=result)
    return evaluate_claim(spec, artefacts)


def _params(method: str = "saliency", order: str = "cascading", metric: str = "spearman_abs",
            max_similarity: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {"method": method, "order": order, "metric": metric,
            "max_similarity": max_similarity, **extra}


# cascading: top-down steps (1, 2, 3 layers); independent: one per layer; two pairs each
CASCADE = [[0.9, 0.7], [0.6, 0.4], [0.3, 0.1]]
INDEPENDENT = [[0.9, 0.5], [0.2, 0.4], [0.6, 0.0]]


def test_cascading_is_judged_after_the_full_cascade():
    result = hand_result("saliency", CASCADE, INDEPENDENT)
    verdict = _judge(_params(max_similarity=0.2), result)
    assert verdict.passed
    assert verdict.observed == pytest.approx(0.2, rel=1e-12)
    assert verdict.n == 2
    assert verdict.family == "randomisation"
    assert verdict.detail.startswith("mean spearman_abs after 3 layers = 0.2000 <= 0.2")
    assert not _judge(_params(max_similarity=0.19), result).passed


def test_independent_is_judged_on_the_mean_over_layers():
    result = hand_result("saliency", CASCADE, INDEPENDENT)
    # mean over the three layers of the per-layer means: (0.7 + 0.3 + 0.3) / 3
    verdict = _judge(_params(order="independent", max_similarity=0.45), result)
    assert verdict.observed == pytest.approx(1.3 / 3, rel=1e-12)
    assert verdict.passed
    assert verdict.interval_method == "t"
    assert verdict.interval_low < verdict.observed < verdict.interval_high
    assert not _judge(_params(order="independent", max_similarity=0.4), result).passed


def test_expected_insensitive_is_a_strict_expected_failure():
    insensitive = hand_result("saliency", [[1.0, 1.0]] * 3, [[1.0, 1.0]] * 3)
    sensitive = hand_result("saliency", CASCADE, INDEPENDENT)
    xfail = _params(max_similarity=0.5, expected_insensitive=True,
                    reason="the map ignores the model")
    confirmed = _judge(xfail, insensitive)
    assert confirmed.passed
    assert confirmed.detail.startswith("expected failure confirmed: mean spearman_abs")
    assert "expected to fail (insensitive: the map ignores the model)" in confirmed.statement
    unexpected = _judge(xfail, sensitive)
    assert not unexpected.passed
    assert unexpected.detail.startswith("unexpected pass: mean spearman_abs after 3 layers")


def test_missing_stage_method_error_and_constant_maps_fail_the_claim():
    assert _judge(_params(), None).detail.startswith("undefined: the run has no randomisation")
    other = hand_result("edge", CASCADE, INDEPENDENT)
    verdict = _judge(_params(), other)
    assert not verdict.passed
    assert verdict.detail == "undefined: the randomisation stage did not run saliency"
    constant = hand_result("saliency", CASCADE, INDEPENDENT, original_constant=(True, True))
    verdict = _judge(_params(), constant)
    assert not verdict.passed
    assert verdict.detail.startswith("untestable: all 2 maps on the trained model are constant")
    # an expected-insensitive claim cannot pass on an untestable method either
    xfail = _params(expected_insensitive=True, reason="r")
    assert not _judge(xfail, constant).passed


def test_an_untestable_pair_counts_with_the_worst_similarity():
    # one of two trained-model maps is constant: it counts as similarity 1, never dropped
    constant = hand_result("saliency", CASCADE, INDEPENDENT, original_constant=(True, False))
    alone = _judge(_params(max_similarity=0.99), hand_result("saliency", CASCADE, INDEPENDENT))
    verdict = _judge(_params(max_similarity=0.99), constant)
    assert verdict.observed > alone.observed
    assert "(1 untestable counted as 1)" in verdict.detail


def test_a_wrong_artefact_type_is_a_programming_error():
    with pytest.raises(TypeError, match="not a RandomisationResult"):
        _judge(_params(), {"saliency": 0.1})  # type: ignore[arg-type]


def test_parameters_are_read_strictly():
    methods = set(METHOD_IDS)
    parsed = parse_claim({"kind": "randomisation", **_params(max_similarity=0.25)}, "t",
                         methods)
    assert parsed.id == "randomisation:saliency:cascading:spearman_abs<=0.25"
    # spearman and ssim may be negative; top-k is a fraction
    parse_claim({"kind": "randomisation", **_params(max_similarity=-0.5)}, "t", methods)
    with pytest.raises(ProtocolError, match=r"max_similarity = 1\.5 is not allowed"):
        parse_claim({"kind": "randomisation", **_params(metric="topk", max_similarity=1.5)},
                    "t", methods)
    with pytest.raises(ProtocolError, match=r"max_similarity = -0\.1 is not allowed"):
        parse_claim({"kind": "randomisation", **_params(metric="topk", max_similarity=-0.1)},
                    "t", methods)
    with pytest.raises(ProtocolError, match="needs a reason"):
        parse_claim({"kind": "randomisation", **_params(expected_insensitive=True)}, "t",
                    methods)
    with pytest.raises(ProtocolError, match="reason is only allowed"):
        parse_claim({"kind": "randomisation", **_params(reason="why")}, "t", methods)
    with pytest.raises(ProtocolError, match="order = 'bottom_up' is not allowed"):
        parse_claim({"kind": "randomisation", **_params(order="bottom_up")}, "t", methods)
    with pytest.raises(ProtocolError, match="method = 'lime' is not allowed"):
        parse_claim({"kind": "randomisation", **_params(method="lime")}, "t", methods)


# --- on the synthetic model (shared run: saliency, random, edge, broken) ---

def test_saliency_passes_on_the_synthetic_model(synthetic):
    result = synthetic["result"]
    for metric, bound in (("spearman_abs", 0.5), ("ssim", 0.3), ("topk", 0.4)):
        verdict = _judge(_params(metric=metric, max_similarity=bound), result)
        assert verdict.passed, verdict
    assert _judge(_params(order="independent", max_similarity=0.8), result).passed


@pytest.mark.parametrize("method", ["random", "edge"])
def test_model_blind_maps_fail_the_claim(method, synthetic):
    result = synthetic["result"]
    for order in ("cascading", "independent"):
        verdict = _judge(_params(method=method, order=order, max_similarity=0.9), result)
        assert not verdict.passed, verdict
        assert verdict.observed == pytest.approx(1.0, rel=1e-12)
    # declared as expected-insensitive, the same result confirms the expected failure
    xfail = _judge(_params(method=method, max_similarity=0.9, expected_insensitive=True,
                           reason="ignores the model's parameters"), result)
    assert xfail.passed
    sal = _judge(_params(max_similarity=0.9, expected_insensitive=True, reason="r"), result)
    assert not sal.passed
    assert sal.detail.startswith("unexpected pass")


def test_a_failed_method_fails_its_claim(synthetic):
    verdict = _judge(_params(method="broken"), synthetic["result"])
    assert not verdict.passed
    assert verdict.detail == "error: RuntimeError: boom (original model)"


def test_the_claim_reads_the_results_loaded_from_disk(synthetic, tmp_path):
    from faceattr.randomisation import load_randomisation, write_randomisation

    write_randomisation(tmp_path, synthetic["result"])
    loaded = load_randomisation(tmp_path)
    assert dataclasses.asdict(_judge(_params(), loaded)) == dataclasses.asdict(
        _judge(_params(), synthetic["result"]))
