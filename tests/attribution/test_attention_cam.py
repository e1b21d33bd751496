# Branch-attention CAM: its formula on hand-made numbers, against captum's per-branch Grad-CAM,
# on FaceNet's Inception-ResNet blocks (random weights), and its refusal of block-free models.
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam

from faceattr.attribution.attention_cam import (
    BranchAttentionCAM,
    branch_attention_map,
    inception_blocks,
)
from faceattr.attribution.base import UnsupportedModelError, VerificationScoreModule
from faceattr.attribution.cam import GradCAM, LayerCAM
from faceattr.models.base import VerificationModel
from faceattr.models.facenet import random_facenet
from faceattr.models.synthetic_inception import SyntheticInceptionNet
from faceattr.models.train_synthetic import init_parameters
from faceattr.rng import torch_generator
from tests.attribution.common import make_batch, model, row

NEAREST = BranchAttentionCAM.Params(upsampling="nearest")


def _inception(seed: int = 0) -> VerificationModel:
    network = SyntheticInceptionNet()
    init_parameters(network, torch_generator(seed, "test_attention_cam"))
    return VerificationModel(name="inception_test", network=network.eval(), input_size_px=64,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


@pytest.fixture(scope="module")
def facenet() -> VerificationModel:
    return random_facenet(0, n_calibration=8, batch_size=4)


def test_formula_on_hand_made_numbers() -> None:
    # branch 0: one channel, alpha = mean grad = 1, map [[1, 0], [2, 1]] -> contribution 4
    # branch 1: one channel, alpha = 0.5, map ReLU(0.5 * [[0, 4], [-2, 0]]) = [[0, 2], [0, 0]] -> 2
    x0 = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]]]])
    g0 = torch.ones_like(x0)
    x1 = torch.tensor([[[[0.0, 4.0], [-2.0, 0.0]]]])
    g1 = torch.full_like(x1, 0.5)
    got = branch_attention_map([x0, x1], [g0, g1])[0, 0].numpy()
    want = (4 / 6) * np.array([[1, 0], [2, 1]]) + (2 / 6) * np.array([[0, 2], [0, 0]])
    np.testing.assert_allclose(got, want, rtol=1e-15)
    uniform = branch_attention_map([x0, x1], [g0, g1], "uniform")[0, 0].numpy()
    np.testing.assert_allclose(uniform, [[1, 2], [2, 1]], rtol=1e-15)


def test_no_positive_evidence_gives_a_zero_map() -> None:
    x = torch.ones(1, 2, 3, 3)
    got = branch_attention_map([x, x], [-torch.ones_like(x), -torch.ones_like(x)])
    assert torch.equal(got, torch.zeros(1, 1, 3, 3, dtype=torch.float64))


def test_matches_captum_grad_cam_of_each_branch() -> None:
    # independent reference: captum's LayerGradCam (ReLU) at each branch gives M_b
    vmodel = _inception()
    batch = make_batch(vmodel, 2)
    score = VerificationScoreModule(vmodel, batch.partner_embeddings)
    probes = batch.probes.clone().requires_grad_(True)
    block = vmodel.named_layers()["block2"]
    per_branch = [LayerGradCam(score, getattr(block, f"branch{b}")).attribute(
        probes, additional_forward_args=(batch.partner_embeddings,), relu_attributions=True
    ).detach().double() for b in range(3)]
    mass = torch.stack([m.sum(dim=(1, 2, 3)) for m in per_branch])  # (B, N)
    want = sum(m * (mass[b] / mass.sum(dim=0))[:, None, None, None]
               for b, m in enumerate(per_branch))
    details = BranchAttentionCAM("a", NEAREST).attribute_with_details(batch)
    assert details.layer == "block2"
    assert details.native_resolution == (8, 8)
    got = details.maps[:, ::8, ::8]  # nearest upsampling: one pixel per cell
    np.testing.assert_allclose(got, want[:, 0].numpy(), rtol=1e-5,
                               atol=1e-7 * float(want.abs().max()))


def test_weighting_changes_the_maps_and_is_not_grad_cam() -> None:
    vmodel = _inception()
    batch = make_batch(vmodel, 2)
    weighted = BranchAttentionCAM("a").attribute(batch)
    uniform = BranchAttentionCAM("u", BranchAttentionCAM.Params(branch_weighting="uniform")
                                 ).attribute(batch)
    cam = GradCAM("g", GradCAM.Params(layer="block2")).attribute(batch)
    for other in (uniform, cam):
        for a, b in zip(weighted, other, strict=True):
            na = (a - a.min()) / np.ptp(a)
            nb = (b - b.min()) / np.ptp(b)
            assert np.abs(na - nb).max() > 1e-2


def test_auto_block_is_the_last_and_unknown_blocks_are_refused() -> None:
    vmodel = _inception()
    batch = make_batch(vmodel, 1)
    assert inception_blocks(vmodel, batch.probes) == ["block1", "block2"]
    assert BranchAttentionCAM("a").attribute_with_details(batch).layer == "block2"
    with pytest.raises(UnsupportedModelError, match="has no Inception block 'conv3'"):
        BranchAttentionCAM("a", BranchAttentionCAM.Params(layer="conv3")).attribute(batch)


@pytest.mark.parametrize("name", ["tiny", "synthetic_cnn"])
def test_models_without_inception_blocks_are_refused(name: str) -> None:
    with pytest.raises(UnsupportedModelError,
                       match=f"not supported for model '{name}': it has no Inception block"):
        BranchAttentionCAM("a").attribute(make_batch(model(name), 1))


@pytest.mark.parametrize(("layer", "native"), [("repeat_1.4", (17, 17)),
                                                ("repeat_2.9", (8, 8)), ("block8", (3, 3))])
def test_runs_on_facenet_blocks(facenet: VerificationModel, layer: str,
                                native: tuple[int, int]) -> None:
    # Block35 / Block17 / Block8 of facenet-pytorch's InceptionResnetV1 (random weights)
    batch = make_batch(facenet, 2)
    details = BranchAttentionCAM("a", BranchAttentionCAM.Params(layer=layer)
                                 ).attribute_with_details(batch)
    assert details.native_resolution == native
    assert details.maps.shape == (2, 160, 160)
    assert np.isfinite(details.maps).all()
    assert (np.ptp(details.maps, axis=(1, 2)) > 0).all()
    layer_cam = LayerCAM("l", LayerCAM.Params(layer=layer)).attribute(batch)
    assert not np.allclose(details.maps / details.maps.max(), layer_cam / layer_cam.max(),
                           atol=1e-3)


def test_facenet_auto_block_is_block8(facenet: VerificationModel) -> None:
    blocks = inception_blocks(facenet, make_batch(facenet, 1).probes)
    assert blocks[-1] == "block8"
    assert {"mixed_6a", "mixed_7a", "repeat_1.0", "repeat_3.4"} <= set(blocks)


def test_maps_are_batch_invariant() -> None:
    vmodel = _inception()
    batch = make_batch(vmodel, 3)
    method = BranchAttentionCAM("a")
    together = method.attribute(batch)
    for i in range(3):
        alone = method.attribute(row(batch, i))
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-4,
                                   atol=1e-6 * np.abs(alone).max())
