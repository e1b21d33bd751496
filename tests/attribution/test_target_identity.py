# Target identity: the scalar a method explains at the probe is the pair's verification score.
# Each check is also fed a planted defect (issue #22 item 1: the research code's Exp 6.2 scored
# the probe against the embedding of a black image) and must fail on it.

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from faceattr.attribution.base import (
    ANGULAR_CLAMP,
    AngularSimilarityModule,
    AttributionBatch,
    VerificationScoreModule,
)
from faceattr.attribution.explained import observe_explained, report_values
from faceattr.attribution.registry import build_method
from faceattr.experiments.target_identity import (
    TARGET_IDENTITY_STATUS,
    apply_target_identity,
    check_target_identity,
    identity_tolerance,
)
from faceattr.falsification.engine import failed_record
from faceattr.models.base import VerificationModel, verification_score
from faceattr.rng import torch_generator
from faceattr.stats.tolerance import UNIT_ROUNDOFF_F32, cosine_tolerance
from tests.helpers import pair, tiny_model, valid

N_PAIRS = 4


@pytest.fixture(scope="module")
def model() -> VerificationModel:
    return tiny_model()


def _batch(model: VerificationModel, *, duplicate_probe: bool = False) -> AttributionBatch:
    generator = torch_generator(7, "target_identity_test")
    probes = torch.rand((N_PAIRS, 3, 16, 16), generator=generator)
    partners = torch.rand((N_PAIRS, 3, 16, 16), generator=generator)
    if duplicate_probe:  # one image probes pairs 0 and 1 (different partners)
        probes[1] = probes[0]
    with torch.no_grad():
        partner_emb = model.embed(partners)
    return AttributionBatch(model=model, probes=probes, partner_embeddings=partner_emb,
                            pair_ids=tuple(f"p{i}" for i in range(N_PAIRS)),
                            identity_masks=None, seed=3)


def _clean(batch: AttributionBatch) -> list[float]:
    # score_clean as the engine computes it: float64 product of the float32 embeddings
    with torch.no_grad():
        probe_emb = batch.model.embed(batch.probes)
    return (probe_emb.double() * batch.partner_embeddings.double()).sum(dim=1).tolist()


@pytest.fixture
def black_partner(monkeypatch: pytest.MonkeyPatch) -> None:
    # the planted defect: the score module scores the probe against a black image's embedding
    def forward(self: VerificationScoreModule, probes: torch.Tensor,
                partner: torch.Tensor | None = None) -> torch.Tensor:
        black = self._model.embed(torch.zeros_like(probes[:1])).detach()
        return verification_score(self._model.embed(probes), black.expand(probes.shape[0], -1))

    monkeypatch.setattr(VerificationScoreModule, "forward", forward)
    return


def _checks(name: str, batch: AttributionBatch, params: dict[str, object] | None = None
            ) -> list[object]:
    method = build_method(name, name, dict(params or {}), "test")
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        method.attribute_with_details(batch)
    return check_target_identity(name, observed.at_probes(), _clean(batch),
                                 int(batch.partner_embeddings.shape[1]))


@pytest.mark.parametrize(("name", "params"), [
    ("saliency", {}), ("gradient_x_input", {}), ("smoothgrad", {"n_samples": 4}),
    ("integrated_gradients", {"n_steps": 8}), ("geodesic_ig", {"n_steps": 8}),
    ("grad_cam", {"layer": "2"}), ("occlusion", {"patch_px": 4, "stride_px": 4}),
    ("lime", {"n_samples": 16, "cell_px": 4}), ("deeplift", {}), ("lrp", {}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_built_ins_explain_the_verification_score(model: VerificationModel, name: str,
                                                  params: dict[str, object]) -> None:
    checks = _checks(name, _batch(model), params)
    assert all(c.passed for c in checks), [c.reason for c in checks]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "smoothgrad"])
def test_a_black_image_partner_fails_target_identity(model: VerificationModel, name: str,
                                                     black_partner: None) -> None:
    checks = _checks(name, _batch(model), {"n_samples": 4} if name == "smoothgrad" else {})
    assert not any(c.passed for c in checks)  # type: ignore[attr-defined]
    reason = checks[0].reason  # type: ignore[attr-defined]
    assert "explains another scalar than the verification score" in reason
    assert f"score_clean = {_clean(_batch(model))[0]:.6f}" in reason


def test_pairs_sharing_a_probe_image_are_told_apart_by_their_partner(
        model: VerificationModel) -> None:
    # SmoothGrad never evaluates the probe itself: its noisy rows of pairs 0 and 1 (one
    # image, two partners) must each be read against their own partner
    batch = _batch(model, duplicate_probe=True)
    checks = _checks("smoothgrad", batch, {"n_samples": 4})
    assert all(c.passed for c in checks), [c.reason for c in checks]  # type: ignore[attr-defined]


def test_a_row_misalignment_at_the_probe_is_caught(model: VerificationModel) -> None:
    # the defect: pair i's probe is scored against pair i+1's partner (rows shifted by one)
    batch = _batch(model)
    shifted = torch.roll(batch.partner_embeddings, 1, dims=0)
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        VerificationScoreModule(model, shifted)(batch.probes.clone().requires_grad_(True))
    checks = check_target_identity("shifted", observed.at_probes(), _clean(batch), 16)
    assert not any(c.passed for c in checks)


def test_an_unobserved_method_fails_with_a_reason(model: VerificationModel) -> None:
    batch = _batch(model)
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        model.embed(batch.probes)  # a score computed by hand, reported nowhere
    checks = check_target_identity("by_hand", observed.at_probes(), _clean(batch), 16)
    assert not any(c.passed for c in checks)
    assert "no explained scalar was observed" in (checks[0].reason or "")
    assert checks[0].explained is None


def test_reported_values_count_only_at_the_probe(model: VerificationModel) -> None:
    batch = _batch(model)
    scores = torch.tensor(_clean(batch))
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        report_values(batch.probes, batch.partner_embeddings, scores)
    assert all(c.passed for c in check_target_identity("rep", observed.at_probes(),
                                                       _clean(batch), 16))
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        report_values(batch.probes * 0.5, batch.partner_embeddings, scores)  # not at the probe
    assert all(v is None for v in observed.at_probes())
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        report_values(batch.probes, batch.partner_embeddings, scores + 0.01)  # another scalar
    assert not any(c.passed for c in check_target_identity("rep", observed.at_probes(),
                                                           _clean(batch), 16))


def test_no_observer_no_cost_and_no_state(model: VerificationModel) -> None:
    # outside observe_explained the hook does nothing (target sanity, the stages)
    batch = _batch(model)
    VerificationScoreModule(model, batch.partner_embeddings)(batch.probes)
    report_values(batch.probes, batch.partner_embeddings, torch.zeros(N_PAIRS))


def test_the_angular_target_is_compared_as_a_cosine(model: VerificationModel) -> None:
    batch = _batch(model)
    module = AngularSimilarityModule(model, batch.partner_embeddings)
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        module(batch.probes)
    values = observed.at_probes()
    clean = _clean(batch)
    for value, score in zip(values, clean, strict=True):
        assert value is not None
        assert value.value == pytest.approx(1 - math.acos(score) / math.pi, abs=1e-6)
        assert value.score == pytest.approx(score, abs=value.score_atol + 1e-6)
    assert AngularSimilarityModule.score_atol == pytest.approx(
        (1 - ANGULAR_CLAMP) + 4 * math.pi * 2.0 ** -24)


def test_identity_tolerance_matches_its_derivation() -> None:
    # cosine_tolerance(0.5) + D u + the target's own rounding
    expected = cosine_tolerance(0.5) + 128 * UNIT_ROUNDOFF_F32 + 1e-6
    assert identity_tolerance(0.5, 128, 1e-6) == expected
    assert 1.1e-5 < identity_tolerance(0.5, 128, 0.0) < 1.2e-5  # 3.9e-6 + 7.6e-6
    with pytest.raises(ValueError, match="embedding_dim"):
        identity_tolerance(0.5, 0, 0.0)


def test_a_gap_just_beyond_the_tolerance_fails() -> None:
    from faceattr.attribution.explained import ExplainedValue

    tol = identity_tolerance(0.5, 16, 0.0)
    inside = ExplainedValue(value=0.5 + 0.9 * tol, score=0.5 + 0.9 * tol, score_atol=0.0,
                            input_distance=0.0, differentiated=True)
    outside = replace(inside, value=0.5 + 1.1 * tol, score=0.5 + 1.1 * tol)
    nan = replace(inside, value=math.nan, score=math.nan)
    passed = [c.passed for c in check_target_identity("m", [inside, outside, nan],
                                                      [0.5, 0.5, 0.5], 16)]
    assert passed == [True, False, False]


def test_a_failed_check_turns_the_record_into_an_identity_error() -> None:
    records = [valid(i, "saliency", False) for i in range(3)]
    records[2] = failed_record(pair(2), "m", "saliency", "error:RuntimeError", "boom", 0.7,
                               "simple")
    checks = check_target_identity("saliency", [None, None, None], [0.7, 0.7, 0.7], 16)
    ok = check_target_identity("saliency", [], [], 16)
    assert ok == []
    from faceattr.attribution.explained import ExplainedValue

    checks[0] = check_target_identity("saliency", [ExplainedValue(
        value=0.7, score=0.7, score_atol=0.0, input_distance=0.0, differentiated=True)],
        [0.7], 16)[0]
    out = apply_target_identity([pair(i) for i in range(3)], records, checks, "simple")
    assert out[0] == records[0]
    assert out[1].status == TARGET_IDENTITY_STATUS
    assert out[1].falsified
    assert "no explained scalar" in (out[1].status_reason or "")
    assert out[2].status == "error:RuntimeError"  # an earlier error is kept
    assert np.isclose(out[1].score_clean or 0.0, 0.7)
