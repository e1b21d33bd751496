# Grad-CAM and LayerCAM: formulas, declared layer, native resolution and upsampling.
from __future__ import annotations

import numpy as np
import pytest
import torch

from faceattr.attribution.base import UnsupportedModelError, VerificationScoreModule
from faceattr.attribution.cam import GradCAM, LayerCAM, resolve_cam_layer
from tests.attribution.common import make_batch, model

NEAREST = GradCAM.Params(upsampling="nearest")  # LayerCAM shares the CAM parameters


def _activation_and_gradient(layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch = make_batch(model("synthetic_cnn"), 2)
    module = batch.model.named_layers()[layer]
    store: dict[str, torch.Tensor] = {}

    def hook(_mod: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        out.retain_grad()
        store["a"] = out

    handle = module.register_forward_hook(hook)
    try:
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        score(batch.probes.clone().requires_grad_(True)).sum().backward()
    finally:
        handle.remove()
    activation = store["a"]
    assert activation.grad is not None
    return activation.detach(), activation.grad.detach()


@pytest.mark.parametrize(("layer", "native"), [("act4", (8, 8)), ("conv2", (16, 16)),
                                                ("act1", (32, 32))])
def test_grad_cam_records_layer_and_native_resolution(layer: str,
                                                      native: tuple[int, int]) -> None:
    details = GradCAM("gc", GradCAM.Params(layer=layer)).attribute_with_details(
        make_batch(model("synthetic_cnn"), 2))
    assert details.layer == layer
    assert details.native_resolution == native
    assert details.upsampling == "bilinear"
    assert details.maps.shape == (2, 64, 64)


def test_auto_layer_is_the_last_conv_block() -> None:
    vmodel = model("synthetic_cnn")
    assert resolve_cam_layer(vmodel, "auto", make_batch(vmodel, 1).probes) == "act4"


def test_unknown_layer_is_an_unsupported_model_error() -> None:
    with pytest.raises(UnsupportedModelError, match="has no layer 'block8'"):
        GradCAM("gc", GradCAM.Params(layer="block8")).attribute(
            make_batch(model("synthetic_cnn"), 1))


def test_grad_cam_matches_its_formula_at_native_resolution() -> None:
    activation, gradient = _activation_and_gradient("act4")
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    expected = torch.relu((weights * activation).sum(dim=1))
    maps = GradCAM("gc", NEAREST).attribute(make_batch(model("synthetic_cnn"), 2))
    # nearest upsampling by 8: every 8th pixel is the native value
    np.testing.assert_allclose(maps[:, ::8, ::8], expected.double().numpy(), rtol=1e-5,
                               atol=1e-9)


def test_layer_cam_weights_each_activation_by_its_positive_gradient() -> None:
    activation, gradient = _activation_and_gradient("act4")
    expected = torch.relu((torch.relu(gradient) * activation).sum(dim=1))
    maps = LayerCAM("lc", NEAREST).attribute(make_batch(model("synthetic_cnn"), 2))
    np.testing.assert_allclose(maps[:, ::8, ::8], expected.double().numpy(), rtol=1e-5,
                               atol=1e-9)


def test_cam_works_with_frozen_parameters() -> None:
    vmodel = model("tiny")
    for parameter in vmodel.network.parameters():
        parameter.requires_grad_(False)
    try:
        maps = LayerCAM("lc").attribute(make_batch(vmodel, 2))
    finally:
        for parameter in vmodel.network.parameters():
            parameter.requires_grad_(True)
    assert np.ptp(maps) > 0
