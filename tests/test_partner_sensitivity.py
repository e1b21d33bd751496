# Partner sensitivity (the verification analogue of the Random Logit test) and target identity,
# from the stage to the claims and end to end through a run. The planted defect throughout is
# issue #22 item 1's: the score module scores the probe against a black image's embedding.

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from faceattr.api import run as run_protocol_api
from faceattr.attribution.base import AttributionBatch, VerificationScoreModule
from faceattr.attribution.registry import build_method
from faceattr.claims.base import ClaimSpec, RunArtefacts
from faceattr.claims.registry import evaluate_claim
from faceattr.config import ProtocolError
from faceattr.data.pairs import Pair
from faceattr.falsification.engine import failed_record
from faceattr.models.base import verification_score
from faceattr.protocol import load_protocol
from faceattr.randomisation.partner import (
    MethodPartnerSensitivity,
    PartnerSensitivityResult,
    PartnerSwap,
    choose_swaps,
    load_partner_sensitivity,
    run_partner_sensitivity,
    write_partner_sensitivity,
)
from faceattr.rng import torch_generator
from tests.helpers import pair, run, small_protocol, tiny_model, valid


@pytest.fixture
def black_partner(monkeypatch: pytest.MonkeyPatch) -> None:
    # the planted defect: the score module scores the probe against a black image's embedding
    def forward(self: VerificationScoreModule, probes: torch.Tensor,
                partner: torch.Tensor | None = None) -> torch.Tensor:
        black = self._model.embed(torch.zeros_like(probes[:1])).detach()
        return verification_score(self._model.embed(probes), black.expand(probes.shape[0], -1))

    monkeypatch.setattr(VerificationScoreModule, "forward", forward)
    return


# --- choosing the impostors ---------------------------------------------------------------

def _pairs() -> list[Pair]:
    out = []
    for i in range(6):
        genuine = i % 2 == 0
        out.append(Pair(pair_id=f"q{i}", image_a=f"a{i}", image_b=f"b{i}", identity_a=f"id{i}",
                        identity_b=f"id{i}" if genuine else f"id{i + 1}", is_genuine=genuine))
    return out


def test_swaps_take_genuine_pairs_and_an_impostor_of_another_identity() -> None:
    pairs = _pairs()
    swaps = choose_swaps(pairs, 3, seed=1)
    assert [pairs[r].is_genuine for r, _, _ in swaps] == [True, True, True]
    for row, _, identity in swaps:
        assert identity != pairs[row].identity_a
    assert choose_swaps(pairs, 3, seed=1) == swaps  # keyed: the same draw in any process
    # each pair's impostor depends on its own key only, never on how many pairs are drawn
    assert choose_swaps(pairs, 1, seed=1)[0] == swaps[0]
    assert any(a != b for a, b in zip(swaps, choose_swaps(pairs, 3, seed=2), strict=True)) \
        or len({image for _, image, _ in swaps}) == 1
    with pytest.raises(ValueError, match=r"n_pairs in \[1, 3\]"):
        choose_swaps(pairs, 4, seed=1)


# --- the stage on a tiny model ------------------------------------------------------------

def _stage_inputs() -> tuple[AttributionBatch, list[PartnerSwap], torch.Tensor]:
    model = tiny_model()
    generator = torch_generator(11, "partner_test")
    probes, partners, impostors = (torch.rand((4, 3, 16, 16), generator=generator)
                                   for _ in range(3))
    with torch.no_grad():
        partner_emb, impostor_emb = model.embed(partners), model.embed(impostors)
    batch = AttributionBatch(model=model, probes=probes, partner_embeddings=partner_emb,
                             pair_ids=tuple(f"p{i}" for i in range(4)), identity_masks=None,
                             seed=5)
    swaps = [PartnerSwap(pair_id=f"p{i}", probe_image=f"a{i}", probe_identity=f"i{i}",
                         partner_image=f"b{i}", impostor_image=f"c{i}", impostor_identity="x",
                         score_genuine=0.5, score_impostor=0.1) for i in range(4)]
    return batch, swaps, impostor_emb


def _stage(names: tuple[str, ...]) -> PartnerSensitivityResult:
    batch, swaps, impostor_emb = _stage_inputs()
    methods = [build_method(n, n, {"n_steps": 8} if n == "integrated_gradients" else {}, "t")
               for n in names]
    return run_partner_sensitivity(methods, batch, swaps=swaps, impostor_embeddings=impostor_emb,
                                   seed=5, metric="spearman_abs")


def test_gradient_maps_change_with_the_partner_and_the_random_control_does_not() -> None:
    result = _stage(("saliency", "integrated_gradients", "random", "constant"))
    assert result.method("saliency").mean is not None
    assert (result.method("saliency").mean or 1.0) < 0.95
    assert (result.method("integrated_gradients").mean or 1.0) < 0.95
    # keyed by pair, not partner: identical maps
    assert result.method("random").similarity == pytest.approx((1.0,) * 4, abs=1e-12)
    assert result.method("constant").original_constant == (True,) * 4


def test_a_black_image_partner_makes_the_maps_partner_free(black_partner: None) -> None:
    result = _stage(("saliency", "integrated_gradients"))
    for method in result.methods:
        assert min(method.similarity) > 0.999999, method


def test_the_result_round_trips_and_validates(tmp_path: Path) -> None:
    result = _stage(("saliency", "random"))
    write_partner_sensitivity(tmp_path, result)
    assert load_partner_sensitivity(tmp_path) == result
    assert load_partner_sensitivity(tmp_path / "nowhere") is None
    row = result.to_json()
    row["methods"][0]["mean"] = 0.123
    with pytest.raises(ValueError, match="does not match its similarities"):
        PartnerSensitivityResult.from_json(row)
    bad = result.to_json()
    bad["methods"][0]["similarity"] = [1.5] * 4
    bad["methods"][0]["mean"] = 1.5
    with pytest.raises(ValueError, match=r"not a number in \[-1.0, 1.0\]"):
        PartnerSensitivityResult.from_json(bad)
    extra = result.to_json() | {"extra": 1}
    with pytest.raises(ValueError, match="unexpected"):
        PartnerSensitivityResult.from_json(extra)
    with pytest.raises(ValueError, match="has the probe's identity"):
        replace(result.swaps[0], impostor_identity=result.swaps[0].probe_identity)


def test_a_failing_method_is_recorded_not_dropped() -> None:
    batch, swaps, impostor_emb = _stage_inputs()
    broken = build_method("oracle", "oracle", {}, "t")  # needs identity masks: none here
    result = run_partner_sensitivity([broken], batch, swaps=swaps,
                                     impostor_embeddings=impostor_emb, seed=5,
                                     metric="spearman_abs")
    assert result.method("oracle").error is not None
    assert result.method("oracle").similarity == ()


# --- the claims ---------------------------------------------------------------------------

def _result(similarity: dict[str, tuple[float, ...]],
            constant: dict[str, tuple[bool, ...]] | None = None,
            error: dict[str, str] | None = None) -> PartnerSensitivityResult:
    swaps = tuple(PartnerSwap(pair_id=f"p{i}", probe_image="a", probe_identity="i",
                              partner_image="b", impostor_image="c", impostor_identity="x",
                              score_genuine=0.6, score_impostor=0.0) for i in range(3))
    methods = []
    for method in sorted(similarity):
        err = (error or {}).get(method)
        methods.append(MethodPartnerSensitivity(
            method_id=method, method_name=method, is_control=False,
            original_constant=(constant or {}).get(method, (False,) * 3),
            similarity=() if err else similarity[method], error=err))
    return PartnerSensitivityResult(model="m", seed=0, metric="spearman_abs", topk_frac=0.1,
                                    swaps=swaps, methods=tuple(methods))


def _judge(kind: str, params: dict[str, object],
           result: PartnerSensitivityResult | None) -> tuple[bool, str]:
    records = {m: [valid(i, m, False) for i in range(3)] for m in ("saliency", "random")}
    spec = ClaimSpec(id="c", kind=kind, params=tuple(sorted(params.items())))
    artefacts = RunArtefacts(summary=run(records), claims=(spec,),
                             records=[r for rows in records.values() for r in rows],
                             partner_sensitivity=result)
    outcome = evaluate_claim(spec, artefacts)
    return outcome.passed, outcome.detail


SENSITIVE = {"method": "saliency", "max_similarity": 0.9}
INSENSITIVE = {"method": "random", "expected_insensitive": True, "min_similarity": 0.99,
               "reason": "keyed by pair, not by partner"}


def test_partner_sensitivity_claim_passes_on_partner_dependent_maps() -> None:
    passed, detail = _judge("partner_sensitivity", SENSITIVE,
                            _result({"saliency": (0.7, 0.75, 0.8), "random": (1.0,) * 3}))
    assert passed, detail
    assert "mean spearman_abs = 0.7500" in detail


def test_partner_sensitivity_claim_fails_on_partner_free_maps() -> None:
    # the planted defect at claim level: the black-image target's maps are the same whatever
    # the partner (similarity 1)
    passed, detail = _judge("partner_sensitivity", SENSITIVE,
                            _result({"saliency": (1.0, 1.0, 0.9999), "random": (1.0,) * 3}))
    assert not passed
    assert "explains the probe alone" in detail


def test_partner_sensitivity_claim_fails_without_data_or_on_errors() -> None:
    assert _judge("partner_sensitivity", SENSITIVE, None) == (False, (
        "undefined: the run has no partner-sensitivity result (partner_sensitivity.json; "
        "declare [partner_sensitivity])"))
    passed, detail = _judge("partner_sensitivity", SENSITIVE,
                            _result({"random": (1.0,) * 3}))
    assert not passed
    assert "did not run saliency" in detail
    passed, detail = _judge("partner_sensitivity", SENSITIVE, _result(
        {"saliency": (), "random": (1.0,) * 3}, error={"saliency": "RuntimeError: x"}))
    assert not passed
    assert detail == "error: RuntimeError: x"


def test_constant_maps_count_against_the_claim() -> None:
    similar = {"saliency": (0.0, 0.9, 0.9), "random": (1.0,) * 3}  # mean 0.6 if dropped
    passed, detail = _judge("partner_sensitivity", SENSITIVE,
                            _result(similar, constant={"saliency": (True, False, False)}))
    assert not passed  # (1 + 0.9 + 0.9) / 3 > 0.9
    assert "1 constant maps counted as 1" in detail
    passed, detail = _judge("partner_sensitivity", SENSITIVE,
                            _result(similar, constant={"saliency": (True,) * 3}))
    assert not passed
    assert detail.startswith("untestable")


def test_expected_insensitive_must_show_the_same_maps() -> None:
    assert _judge("partner_sensitivity", INSENSITIVE,
                  _result({"saliency": (0.5,) * 3, "random": (1.0,) * 3}))[0]
    passed, detail = _judge("partner_sensitivity", INSENSITIVE,
                            _result({"saliency": (0.5,) * 3, "random": (1.0, 0.2, 1.0)}))
    assert not passed
    assert "misses >= 0.99" in detail
    passed, _ = _judge("partner_sensitivity", INSENSITIVE, _result(
        {"saliency": (0.5,) * 3, "random": (1.0,) * 3},
        constant={"random": (True, False, False)}))
    assert not passed  # a constant map cannot show insensitivity: counted as -1


def test_partner_sensitivity_parameters_are_strict() -> None:
    with pytest.raises(ProtocolError, match="needs a reason"):
        _judge("partner_sensitivity", {**INSENSITIVE, "reason": " "}, None)
    with pytest.raises(ProtocolError, match="unknown key 'max_similarity'"):
        _judge("partner_sensitivity", {**INSENSITIVE, "max_similarity": 0.5}, None)
    with pytest.raises(ProtocolError, match="unknown key 'reason'"):
        _judge("partner_sensitivity", {**SENSITIVE, "reason": "x"}, None)
    with pytest.raises(ProtocolError, match="max_similarity"):
        _judge("partner_sensitivity", {"method": "saliency", "max_similarity": 1.5}, None)


def test_target_identity_claim_counts_identity_errors() -> None:
    records = {m: [valid(i, m, False) for i in range(4)] for m in ("saliency", "random")}
    bad = failed_record(pair(1), "m", "saliency", "error:target_identity",
                        "saliency explains another scalar", 0.7, "simple")
    planted = {**records, "saliency": [records["saliency"][0], bad, *records["saliency"][2:]]}
    for params in ({}, {"method": "saliency"}):
        for rows, expected in ((records, True), (planted, False)):
            spec = ClaimSpec(id="t", kind="target_identity", params=tuple(params.items()))
            outcome = evaluate_claim(spec, RunArtefacts(
                summary=run(rows), records=[r for v in rows.values() for r in v],
                claims=(spec,)))
            assert outcome.passed is expected, outcome.detail
            if not expected:
                assert "saliency explains another scalar" in outcome.detail


def test_the_protocol_table_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(small_protocol(claims='[partner_sensitivity]\nn_pairs = 2\n'))
    spec = load_protocol(path).partner_sensitivity
    assert spec is not None
    assert (spec.n_pairs, spec.metric) == (2, "spearman_abs")
    path.write_text(small_protocol(claims='[partner_sensitivity]\nn_pairs = 2\ntopk_frac = 0.2\n'))
    with pytest.raises(ProtocolError, match="unknown key 'topk_frac'"):
        load_protocol(path)


# --- end to end through a run ----------------------------------------------------------------

_E2E_CLAIMS = """
[partner_sensitivity]
n_pairs = 3

[[claims]]
kind = "target_identity"

[[claims]]
kind = "partner_sensitivity"
method = "saliency"
max_similarity = 0.9

[[claims]]
kind = "partner_sensitivity"
method = "random"
expected_insensitive = true
min_similarity = 0.99
reason = "keyed by pair, not by partner"
"""


def _e2e(tmp_path: Path, name: str) -> dict[str, dict[str, Any]]:
    path = tmp_path / f"{name}.toml"
    path.write_text(small_protocol(n_pairs=6, k=4, pairs_per_batch=6,
                                   methods=("saliency", "random"), claims=_E2E_CLAIMS))
    outcome = run_protocol_api(path, reports_dir=tmp_path / name)
    assert outcome.claims is not None
    assert (outcome.folder / "partner_sensitivity.json").exists()
    assert outcome.report is not None
    assert 'id="partner-sensitivity"' in outcome.report.read_text(encoding="utf-8")
    rows = {c["claim_id"]: c for c in outcome.claims["claims"]}
    assert all(row["result"] is not None for row in rows.values()), rows  # every claim judged
    return {claim_id: row["result"] for claim_id, row in rows.items()}


def test_a_correct_run_passes_target_identity_and_partner_sensitivity(tmp_path: Path) -> None:
    claims = _e2e(tmp_path, "correct")
    for claim_id in ("target_identity:all:error_target_identity<=0",
                     "partner_sensitivity:saliency:similarity<=0.9",
                     "partner_sensitivity:random:insensitive>=0.99",
                     "errors:saliency:n_error<=0"):
        assert claims[claim_id]["passed"], claims[claim_id]


def test_a_black_image_partner_fails_the_gate_by_name(tmp_path: Path,
                                                      black_partner: None) -> None:
    # the planted defect in a correct synthetic run: target sanity still passes (the scalar
    # moves), but target identity and partner sensitivity fail, by name
    claims = _e2e(tmp_path, "planted")
    identity = claims["target_identity:all:error_target_identity<=0"]
    assert not identity["passed"]
    assert "explains another scalar than the verification score" in str(identity["detail"])
    assert not claims["partner_sensitivity:saliency:similarity<=0.9"]["passed"]
    budget = claims["errors:saliency:n_error<=0"]
    assert not budget["passed"]
    # every pair is an identity error, none a target-sanity one: the wrong scalar moves
    assert "6/6 error pairs (error:target_identity;" in budget["detail"]
    assert claims["partner_sensitivity:random:insensitive>=0.99"]["passed"]  # controls exempt
