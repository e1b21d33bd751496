# Registry-wide checks: every method runs on every model, is deterministic, batch-invariant
# and gives maps distinct from every other method's.
from __future__ import annotations

import itertools
from types import MappingProxyType

import numpy as np
import pytest
import torch

from faceattr.attribution import METHODS, build_method
from faceattr.attribution.base import AttributionMethod, UnsupportedModelError
from faceattr.config import ProtocolError
from faceattr.testing.tolerances import RTOL_BATCH_MAP
from tests.attribution.common import (
    ARCHITECTURE_SPECIFIC,
    METHOD_PARAMS,
    MODELS,
    make_batch,
    model,
    model_for,
    row,
)

N_PAIRS = 2
ATTRIBUTION_METHODS = sorted(n for n in METHODS if not METHODS[n].info.is_control)

# the derivation lives beside the constant (faceattr/testing/tolerances.py)
RTOL_BATCH = RTOL_BATCH_MAP


def _method(name: str) -> AttributionMethod:
    return build_method(name, name, METHOD_PARAMS[name], "test")


def test_registry_is_frozen_and_every_entry_is_parametrised_here() -> None:
    assert isinstance(METHODS, MappingProxyType)
    assert set(METHOD_PARAMS) == set(METHODS)
    for name, cls in METHODS.items():
        assert cls.info.name == name
        assert cls.info.reference


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_gives_finite_rankable_maps(model_name: str, name: str) -> None:
    batch = make_batch(model(model_name), N_PAIRS)
    if name in ARCHITECTURE_SPECIFIC:  # no attention layer / Inception block in these models
        with pytest.raises(UnsupportedModelError, match="not supported for model"):
            _method(name).attribute(batch)
        batch = make_batch(model_for(name, model_name), N_PAIRS)
    maps = _method(name).attribute(batch)
    side = batch.model.input_size_px
    assert maps.shape == (N_PAIRS, side, side)
    assert maps.dtype == np.float64
    assert np.isfinite(maps).all()
    if name != "constant":
        assert (np.ptp(maps, axis=(1, 2)) > 0).all(), f"{name} gave a flat map on {model_name}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_details_maps_equal_attribute_maps(name: str) -> None:
    method, batch = _method(name), make_batch(model_for(name, "tiny"), N_PAIRS)
    details = method.attribute_with_details(batch)
    np.testing.assert_array_equal(details.maps, method.attribute(batch))
    assert (details.convergence_delta is not None) == method.info.has_convergence_delta


@pytest.mark.parametrize("name", sorted(METHODS))
def test_same_seed_gives_identical_maps(name: str) -> None:
    batch = make_batch(model_for(name, "synthetic_cnn"), N_PAIRS, seed=3)
    np.testing.assert_array_equal(_method(name).attribute(batch), _method(name).attribute(batch))


@pytest.mark.parametrize("name", [n for n in sorted(METHODS) if METHODS[n].info.stochastic])
def test_stochastic_methods_depend_on_the_seed(name: str) -> None:
    vmodel = model("synthetic_cnn")
    first = _method(name).attribute(make_batch(vmodel, 1, seed=3))
    second = _method(name).attribute(make_batch(vmodel, 1, seed=4))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_batch_maps_equal_per_pair_maps(name: str) -> None:
    batch = make_batch(model_for(name, "synthetic_cnn"), 3)
    together = _method(name).attribute(batch)
    alone = np.concatenate([_method(name).attribute(row(batch, i)) for i in range(3)])
    scale = np.abs(alone).max(axis=(1, 2))
    error = np.abs(together - alone).max(axis=(1, 2))
    assert (error <= RTOL_BATCH * scale).all(), f"{name}: batch error {error} vs scale {scale}"


def test_methods_do_not_touch_the_global_torch_rng() -> None:
    state = torch.random.get_rng_state()
    batch = make_batch(model("tiny"), N_PAIRS)
    for name in METHODS:
        _method(name).attribute(batch if name not in ARCHITECTURE_SPECIFIC else
                                make_batch(model_for(name, "tiny"), N_PAIRS))
    assert torch.equal(state, torch.random.get_rng_state())


def test_distinct_methods_give_distinct_maps() -> None:
    # PITFALLS.md #20: two registry names must not be one method under two names
    batch = make_batch(model("synthetic_cnn"), N_PAIRS)
    # (the architecture-specific methods: faceattr.testing's distinct_from_builtins, on their
    # own models, tests/testing/test_builtins.py)
    maps = {name: _method(name).attribute(batch) for name in METHODS
            if name not in ARCHITECTURE_SPECIFIC}
    for a, b in itertools.combinations(sorted(maps), 2):
        ma, mb = maps[a], maps[b]
        scale = max(np.abs(ma).max(), np.abs(mb).max())
        # also compare after min-max normalisation, which a ranking-based test cannot see past
        na = (ma - ma.min()) / max(np.ptp(ma), 1e-300)
        nb = (mb - mb.min()) / max(np.ptp(mb), 1e-300)
        assert np.abs(ma - mb).max() > 1e-3 * scale, f"{a} and {b} give identical maps"
        assert np.abs(na - nb).max() > 1e-3, f"{a} and {b} give the same normalised maps"


@pytest.mark.parametrize(("name", "params", "message"), [
    ("integrated_gradients", {"n_step": 8}, "unknown key 'n_step'"),
    ("integrated_gradients", {"baseline": "white"}, "baseline = 'white' is not allowed"),
    ("smoothgrad", {"noise_sd": 2.0}, "noise_sd = 2.0 is not allowed"),
    ("grad_cam", {"upsampling": "bicubic"}, "upsampling = 'bicubic' is not allowed"),
    ("occlusion", {"patch_px": 0}, "patch_px = 0 is not allowed"),
    ("kernel_shap", {"n_samples": 2}, "n_samples = 2 is not allowed"),
    ("lrp", {"epsilon": 0.1}, "unknown key 'epsilon'"),
])
def test_parameters_are_read_strictly(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        build_method(name, name, params, "test")


@pytest.mark.parametrize("name", ATTRIBUTION_METHODS)
def test_describe_names_the_method(name: str) -> None:
    described = _method(name).describe()
    assert described["name"] == name
    assert described["reference"] == METHODS[name].info.reference
