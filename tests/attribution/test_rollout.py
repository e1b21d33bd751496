# Attention rollout and gradient-weighted rollout: formulas against a plain per-sample loop,
# planted attention patterns, target (in)dependence, and the refusal of attention-free models.
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.attribution.base import (
    AttributionBatch,
    UnsupportedModelError,
    VerificationScoreModule,
)
from faceattr.attribution.rollout import (
    AttentionRollout,
    GradientAttentionRollout,
    attention_layers,
    gradient_rollout,
    rollout,
)
from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_vit import SyntheticFaceViT, init_vit_parameters
from faceattr.rng import torch_generator
from tests.attribution.common import make_batch, model, row

N_TOKENS = 1 + 64  # class token + the 8 x 8 patch grid


def _random_vit(seed: int = 0) -> VerificationModel:
    network = SyntheticFaceViT()
    init_vit_parameters(network, torch_generator(seed, "test_rollout"))
    # larger attention logits than the init's, so the heads attend unevenly
    with torch.no_grad():
        for block in network.blocks:
            block.attn.qkv.weight.mul_(4.0)
    return VerificationModel(name="vit_test", network=network.eval(), input_size_px=64,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


def _attentions(n: int, layers: int, seed: int) -> list[torch.Tensor]:
    g = torch_generator(seed, "attentions")
    return [torch.softmax(3 * torch.randn(n, 4, N_TOKENS, N_TOKENS, generator=g,
                                          dtype=torch.float64), dim=-1) for _ in range(layers)]


def _rollout_loop(attentions: list[np.ndarray]) -> np.ndarray:
    # Abnar & Zuidema 2020, one sample: A' = (0.5 mean_h A + 0.5 I) / row sums; R = A'_L ... A'_1
    result = np.eye(attentions[0].shape[-1])
    for heads in attentions:
        mixed = 0.5 * heads.mean(axis=0) + 0.5 * np.eye(heads.shape[-1])
        mixed = mixed / mixed.sum(axis=1, keepdims=True)
        result = mixed @ result
    return result


def test_rollout_matches_a_per_sample_loop() -> None:
    attentions = _attentions(2, 3, 0)
    got = rollout(attentions).numpy()
    for i in range(2):
        want = _rollout_loop([a[i].numpy() for a in attentions])
        np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-15)


def test_rollout_rows_are_distributions() -> None:
    got = rollout(_attentions(2, 4, 1), "max")
    np.testing.assert_allclose(got.sum(dim=-1).numpy(), 1.0, rtol=1e-12)
    assert (got >= 0).all()


def test_rollout_of_one_layer_is_half_attention_half_identity() -> None:
    (attention,) = _attentions(1, 1, 2)
    got = rollout([attention])[0]
    want = 0.5 * attention[0].mean(dim=0) + 0.5 * torch.eye(N_TOKENS, dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_gradient_rollout_matches_a_per_sample_loop() -> None:
    attentions = _attentions(2, 3, 3)
    g = torch_generator(3, "gradients")
    gradients = [torch.randn(a.shape, generator=g, dtype=torch.float64) for a in attentions]
    got = gradient_rollout(attentions, gradients).numpy()
    for i in range(2):
        # Chefer et al. 2021 (ICCV), eqs. 5-6: R = I; R += mean_h[(grad * A)^+] R
        result = np.eye(N_TOKENS)
        for a, grad in zip(attentions, gradients, strict=True):
            weighted = np.clip(grad[i].numpy() * a[i].numpy(), 0, None).mean(axis=0)
            result = result + weighted @ result
        np.testing.assert_allclose(got[i], result, rtol=1e-12, atol=1e-15)


class _PlantedSoftmax(nn.Softmax):
    """Returns a fixed attention: every token attends to token ``target`` only."""

    def __init__(self, target: int) -> None:
        super().__init__(dim=-1)
        self.target = target

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        planted = torch.zeros_like(logits)
        planted[..., self.target] = 1.0
        # keep the graph: the planted pattern plus zero times the real softmax
        return planted + 0.0 * super().forward(logits)


@pytest.mark.parametrize("patch", [0, 27, 63])
def test_rollout_finds_a_planted_attention_target(patch: int) -> None:
    vmodel = _random_vit()
    for block in vmodel.network.blocks:
        block.attn.softmax = _PlantedSoftmax(1 + patch)
    batch = make_batch(vmodel, 2)
    details = AttentionRollout("r", AttentionRollout.Params(upsampling="nearest")
                               ).attribute_with_details(batch)
    assert details.native_resolution == (8, 8)
    row, col = divmod(patch, 8)
    for m in details.maps:
        # the planted patch's 8 x 8 pixels hold the map's maximum, every other pixel less
        top = m[8 * row:8 * row + 8, 8 * col:8 * col + 8]
        assert np.all(top == m.max())
        assert (m == m.max()).sum() == 64


def test_rollout_records_every_attention_layer() -> None:
    vmodel = _random_vit()
    details = AttentionRollout("r").attribute_with_details(make_batch(vmodel, 1))
    assert details.layer == ",".join(f"blocks.{i}.attn.softmax" for i in range(4))
    assert details.upsampling == "bilinear"
    assert details.maps.shape == (1, 64, 64)
    assert np.ptp(details.maps) > 0


def test_rollout_is_target_independent_and_gradient_rollout_is_not() -> None:
    vmodel = _random_vit()
    batch = make_batch(vmodel, 2)
    other = AttributionBatch(model=vmodel, probes=batch.probes,
                             partner_embeddings=batch.partner_embeddings.flip(0),
                             pair_ids=batch.pair_ids, identity_masks=None, seed=0)
    plain = AttentionRollout("r")
    np.testing.assert_array_equal(plain.attribute(batch), plain.attribute(other))
    grad = GradientAttentionRollout("g")
    first, second = grad.attribute(batch), grad.attribute(other)
    assert np.abs(first - second).max() > 1e-3 * np.abs(first).max()


def test_gradient_rollout_uses_the_score_gradient_of_each_row() -> None:
    # reference: per-row gradients by one backward pass per row through hooks
    vmodel = _random_vit()
    batch = make_batch(vmodel, 2)
    names = attention_layers(vmodel, batch.probes)
    modules = [vmodel.named_layers()[n] for n in names]
    for i in range(2):
        store: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _i, out, store=store: store.append(out))
                   for m in modules]
        try:
            score = VerificationScoreModule(vmodel, batch.partner_embeddings[i:i + 1])
            value = score(batch.probes[i:i + 1].clone().requires_grad_(True))
        finally:
            for h in handles:
                h.remove()
        grads = torch.autograd.grad(value.sum(), store)
        relevance = gradient_rollout(store, list(grads))[0, 0, 1:].reshape(1, 1, 8, 8)
        want = nn.functional.interpolate(relevance, size=(64, 64), mode="bilinear",
                                         align_corners=False)[0, 0].numpy()
        got = GradientAttentionRollout("g").attribute(batch)[i]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9 * np.abs(want).max())


@pytest.mark.parametrize("cls", [AttentionRollout, GradientAttentionRollout])
@pytest.mark.parametrize("name", ["tiny", "synthetic_cnn"])
def test_models_without_attention_are_refused(cls: type, name: str) -> None:
    with pytest.raises(UnsupportedModelError,
                       match=f"not supported for model '{name}': it has no attention layer"):
        cls("r").attribute(make_batch(model(name), 1))


def test_rollout_maps_are_batch_invariant() -> None:
    vmodel = _random_vit()
    batch = make_batch(vmodel, 3)
    for method in (AttentionRollout("r"), GradientAttentionRollout("g")):
        together = method.attribute(batch)
        for i in range(3):
            alone = method.attribute(row(batch, i))
            np.testing.assert_allclose(together[i], alone[0], rtol=1e-4,
                                       atol=1e-6 * np.abs(alone).max())


def test_checks_run_on_the_vit_by_default_and_fail_on_an_attention_free_model() -> None:
    from faceattr.attribution.registry import METHODS
    from faceattr.models.loading import MODEL_NAMES
    from faceattr.testing import method_checks, tiny_model
    from faceattr.testing.methods import BUILTIN_CHECK_MODELS

    assert set(BUILTIN_CHECK_MODELS) <= set(METHODS)
    assert set(BUILTIN_CHECK_MODELS.values()) <= set(MODEL_NAMES)
    dict(method_checks("gradient_rollout"))["maps_finite"]()  # the shipped ViT: passes
    # the same check on the tiny CNN (no attention layer) must fail loudly, not pass quietly
    on_tiny = dict(method_checks("gradient_rollout", model=tiny_model(0)))["maps_finite"]
    with pytest.raises((AssertionError, UnsupportedModelError), match="attention"):
        on_tiny()
