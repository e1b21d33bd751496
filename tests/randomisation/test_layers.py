from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.randomisation.layers import (
    cascading_steps,
    randomisable_layers,
    randomise_layers,
    reinitialise_module,
)
from faceattr.rng import torch_generator

SYNTHETIC_LAYERS = ("conv1", "conv2", "conv3", "conv4", "embedding")


def _snapshot(model: VerificationModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.network.state_dict().items()}


def _owner(key: str) -> str:
    return key.rsplit(".", 1)[0]


def test_synthetic_layers_in_forward_order():
    assert randomisable_layers(load_synthetic_model()) == SYNTHETIC_LAYERS


class _DeclaredOutOfOrder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # declared head first, but it runs last
        self.head = nn.Linear(2 * 4 * 4, 5)
        self.unused = nn.Linear(3, 3)
        self.body = nn.Conv2d(3, 2, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(x).flatten(1))
        return out


def test_layers_follow_the_forward_pass_not_the_declaration():
    network = _DeclaredOutOfOrder().to_empty(device="cpu")
    model = VerificationModel(name="ooo", network=network, input_size_px=8, pixel_mean=0.0,
                              pixel_scale=255.0, weights_sha256="0" * 64)
    assert randomisable_layers(model) == ("body", "head")


def test_cascading_steps_are_top_down():
    assert cascading_steps(("a", "b", "c")) == (("c",), ("c", "b"), ("c", "b", "a"))
    steps = cascading_steps(SYNTHETIC_LAYERS)
    assert steps[0] == ("embedding",)
    assert steps[-1] == ("embedding", "conv4", "conv3", "conv2", "conv1")


def test_randomise_changes_exactly_the_named_layers():
    model = load_synthetic_model()
    before = _snapshot(model)
    randomised = randomise_layers(model, ["conv4", "embedding"], seed=0)
    after = randomised.network.state_dict()
    changed = {"conv4", "embedding"}
    for key, value in before.items():
        if _owner(key) in changed:
            # every element of every parameter (weights and the embedding bias) is redrawn
            assert bool(torch.all(after[key] != value)), key
        else:
            torch.testing.assert_close(after[key], value, rtol=0.0, atol=0.0, msg=key)
    assert {_owner(k) for k in before if _owner(k) in changed} == changed
    assert "embedding.bias" in before


def test_randomise_never_mutates_the_caller_and_keeps_the_global_rng():
    model = load_synthetic_model()
    before = _snapshot(model)
    rng_state = torch.random.get_rng_state()
    randomised = randomise_layers(model, SYNTHETIC_LAYERS, seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    for key, value in model.network.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0.0, atol=0.0, msg=key)
    assert randomised.network is not model.network
    assert randomised.name == model.name
    assert dataclasses.replace(randomised, network=model.network).__dict__ == model.__dict__
    assert not randomised.network.training


def test_randomise_is_deterministic_per_seed_and_keyed_per_layer():
    model = load_synthetic_model()
    first = randomise_layers(model, ["conv4", "embedding"], seed=7).network.state_dict()
    again = randomise_layers(model, ["embedding", "conv4"], seed=7).network.state_dict()
    other = randomise_layers(model, ["conv4", "embedding"], seed=8).network.state_dict()
    alone = randomise_layers(model, ["conv4"], seed=7).network.state_dict()
    for key in first:
        torch.testing.assert_close(first[key], again[key], rtol=0.0, atol=0.0, msg=key)
    assert not torch.equal(first["conv4.weight"], other["conv4.weight"])
    # a layer gets the same weights whichever other layers are randomised with it
    torch.testing.assert_close(first["conv4.weight"], alone["conv4.weight"], rtol=0.0, atol=0.0)


def test_reinitialise_draws_from_the_generator_only():
    # built on the meta device: constructing them draws nothing from the global RNG
    layer = nn.Linear(6, 4, device="meta").to_empty(device="cpu")
    other = nn.Linear(6, 4, device="meta").to_empty(device="cpu")
    rng_state = torch.random.get_rng_state()
    reinitialise_module(layer, torch_generator(0, "test", "layer"))
    reinitialise_module(other, torch_generator(0, "test", "layer"))
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    torch.testing.assert_close(layer.weight, other.weight, rtol=0.0, atol=0.0)
    torch.testing.assert_close(layer.bias, other.bias, rtol=0.0, atol=0.0)
    # the default bias bound 1 / sqrt(fan_in)
    assert float(layer.bias.detach().abs().max()) <= 6 ** -0.5


def test_randomise_rejects_unknown_repeated_and_non_weight_layers():
    model = load_synthetic_model()
    with pytest.raises(ValueError, match="no weight layer 'conv9'"):
        randomise_layers(model, ["conv9"], seed=0)
    with pytest.raises(ValueError, match="no weight layer 'bn1'"):
        randomise_layers(model, ["bn1"], seed=0)
    with pytest.raises(ValueError, match="repeat"):
        randomise_layers(model, ["conv1", "conv1"], seed=0)
    with pytest.raises(TypeError, match="cannot randomise a ReLU"):
        reinitialise_module(nn.ReLU(), torch_generator(0, "x"))
