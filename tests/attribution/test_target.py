# Target sanity: the planted research-code defect (norm of a normalised embedding) fails it.
from __future__ import annotations

import torch

from faceattr.attribution.target import TARGET_ERROR_STATUS, target_sanity
from tests.attribution.common import make_batch, model


def test_the_verification_score_passes() -> None:
    batch = make_batch(model("synthetic_cnn"), 3)
    checks = target_sanity(batch.model, batch.probes, batch.partner_embeddings,
                           grad_norm_min=1e-6)
    assert [c.passed for c in checks] == [True, True, True]
    assert all(c.reason is None and c.grad_norm > 1e-3 and c.max_change > 1e-4 for c in checks)
    with torch.no_grad():
        scores = (batch.model.embed(batch.probes) * batch.partner_embeddings).sum(dim=1)
    assert [round(c.score, 5) for c in checks] == [round(s, 5) for s in scores.tolist()]


def test_the_norm_of_the_normalised_embedding_fails() -> None:
    # PITFALLS.md #5: the research code explained ||f(x)|| with f L2-normalised: a constant
    batch = make_batch(model("synthetic_cnn"), 3)
    vmodel = batch.model
    checks = target_sanity(vmodel, batch.probes, batch.partner_embeddings, grad_norm_min=1e-6,
                           target=lambda probes, _partner: vmodel.embed(probes).norm(dim=1))
    assert [c.passed for c in checks] == [False, False, False]
    for check in checks:
        assert check.reason is not None
        assert "gradient norm" in check.reason
        assert "constant target" in check.reason
    assert TARGET_ERROR_STATUS == "error:target"


def test_a_target_that_ignores_the_partner_still_passes_if_it_varies() -> None:
    # target sanity checks variation only; partner dependence is tested per method
    batch = make_batch(model("tiny"), 2)
    checks = target_sanity(batch.model, batch.probes, batch.partner_embeddings,
                           grad_norm_min=1e-9,
                           target=lambda probes, _partner: batch.model.embed(probes)[:, 0])
    assert all(c.passed for c in checks)
