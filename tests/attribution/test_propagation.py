# DeepLIFT and LRP: honest residuals, in-place ReLUs, unsupported models refused loudly.
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.attribution import AttributionBatch
from faceattr.attribution.base import UnsupportedModelError
from faceattr.attribution.propagation import LRP, DeepLift, lrp_support
from faceattr.models.base import verification_score
from tests.attribution.common import make_batch, model
from tests.helpers import tiny_model


def _score(batch: AttributionBatch, probes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return verification_score(batch.model.embed(probes), batch.partner_embeddings)


def test_deeplift_residual_is_reported_as_computed() -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    details = DeepLift("dl").attribute_with_details(batch)
    expected = details.maps.sum(axis=(1, 2)) - (
        _score(batch, batch.probes) - _score(batch, torch.zeros_like(batch.probes))).numpy()
    assert details.convergence_delta is not None
    # captum's own delta and ours agree to float32 rounding of ~12k summed terms
    np.testing.assert_allclose(details.convergence_delta, expected, atol=1e-5)


def test_deeplift_handles_in_place_relus_without_changing_the_model() -> None:
    base = tiny_model()
    layers = [nn.ReLU(inplace=True) if isinstance(m, nn.ReLU) else m for m in base.network]
    inplace = dataclasses.replace(base, network=nn.Sequential(*layers).eval())
    out_of_place = make_batch(base, 2)
    batch = dataclasses.replace(out_of_place, model=inplace)
    maps = DeepLift("dl").attribute(batch)
    np.testing.assert_allclose(maps, DeepLift("dl").attribute(out_of_place), rtol=1e-5,
                               atol=1e-9)
    assert all(m.inplace for m in inplace.network if isinstance(m, nn.ReLU))


@pytest.mark.parametrize("model_name", ["synthetic_cnn", "tiny"])
def test_lrp_conservation_is_reported_and_close(model_name: str) -> None:
    batch = make_batch(model(model_name), 2)
    details = LRP("lrp").attribute_with_details(batch)
    score = _score(batch, batch.probes).double().numpy()
    assert details.convergence_delta is not None
    np.testing.assert_allclose(details.convergence_delta, details.maps.sum(axis=(1, 2)) - score,
                               atol=1e-5)
    # relevance lost to biases (merged BatchNorm shifts) and epsilon: measured 5-8% of s on the
    # synthetic CNN; a lost sign or a fake map would be far outside 25%
    assert (np.abs(details.convergence_delta) < 0.25 * np.abs(score)).all(), details


def test_lrp_leaves_the_model_unchanged() -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    before = {k: v.clone() for k, v in batch.model.network.state_dict().items()}
    score = _score(batch, batch.probes)
    LRP("lrp").attribute(batch)
    after = batch.model.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(score, _score(batch, batch.probes))
    assert not any(m._forward_hooks or m._backward_hooks for m in batch.model.network.modules())


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.17 * self.conv(x)  # functional residual scaling, as in FaceNet's blocks


def test_lrp_refuses_a_model_without_declared_rules() -> None:
    base = tiny_model()
    network = nn.Sequential(_Residual(), *base.network).eval()
    batch = dataclasses.replace(make_batch(base, 1),
                                model=dataclasses.replace(base, network=network))
    assert lrp_support(batch.model)[1] is not None
    with pytest.raises(UnsupportedModelError, match="LRP is not supported for model 'tiny'"):
        LRP("lrp").attribute(batch)


def test_lrp_refuses_unknown_layer_types() -> None:
    base = tiny_model()
    network = nn.Sequential(*base.network[:-1], nn.Tanh(), base.network[-1]).eval()
    batch = dataclasses.replace(make_batch(base, 1),
                                model=dataclasses.replace(base, network=network))
    with pytest.raises(UnsupportedModelError, match="no LRP rule is declared for layers Tanh"):
        LRP("lrp").attribute(batch)
