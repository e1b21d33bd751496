from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.data.synthetic import synthetic_batch
from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_cnn import (
    SYNTHETIC_WEIGHTS_ENV,
    SyntheticFaceCNN,
    default_weights_path,
    load_synthetic_model,
)
from faceattr.models.synthetic_eval import evaluate_synthetic_model, rank_auc
from faceattr.models.train_synthetic import init_parameters
from faceattr.rng import torch_generator

torch.set_num_threads(1)

FIXTURE = Path(__file__).resolve().parents[1] / "faceattr/assets/models/synthetic_cnn.pt"


@pytest.fixture(scope="module")
def model() -> VerificationModel:
    return load_synthetic_model(FIXTURE)


def test_network_shape_names_and_size() -> None:
    network = SyntheticFaceCNN().eval()
    names = dict(network.named_modules())
    for name in ("conv1", "conv2", "conv3", "conv4", "act4", "embedding"):
        assert name in names
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in network.modules())
    n_params = sum(p.numel() for p in network.parameters())
    assert 200_000 <= n_params <= 500_000
    with torch.no_grad():
        out = network(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 128)


def test_init_parameters_is_keyed_by_generator() -> None:
    def build(seed: int) -> SyntheticFaceCNN:
        with torch.device("meta"):
            network = SyntheticFaceCNN()
        network = network.to_empty(device="cpu")
        init_parameters(network, torch_generator(seed, "test_init"))
        return network

    a, b, c = build(0), build(0), build(1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0.0, atol=0.0, msg=name)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    running_var = a.bn1.running_var
    assert running_var is not None
    assert torch.equal(running_var, torch.ones(32))


def test_model_loads_in_eval_mode_with_provenance(model: VerificationModel) -> None:
    assert model.name == "synthetic_cnn"
    assert model.input_size_px == 64
    assert (model.pixel_mean, model.pixel_scale) == (0.0, 255.0)
    assert not model.network.training
    assert model.weights_sha256 == hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert "conv4" in model.named_layers()
    assert all(p.requires_grad for p in model.network.parameters())


def test_default_path_is_the_fixture_and_env_overrides_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SYNTHETIC_WEIGHTS_ENV, raising=False)
    assert default_weights_path() == FIXTURE
    monkeypatch.setenv(SYNTHETIC_WEIGHTS_ENV, str(tmp_path / "w.pt"))
    assert default_weights_path() == tmp_path / "w.pt"
    with pytest.raises(FileNotFoundError, match=r"w\.pt"):
        load_synthetic_model()


def test_loading_draws_no_random_numbers() -> None:
    state = torch.random.get_rng_state()
    load_synthetic_model(FIXTURE)
    assert torch.equal(state, torch.random.get_rng_state())


def test_missing_weights_give_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=r"nope\.pt.*train_synthetic") as info:
        load_synthetic_model(missing)
    assert "\n" not in str(info.value)


def test_embeddings_are_unit_norm_and_deterministic(model: VerificationModel) -> None:
    images, _ = synthetic_batch(0, [1000, 1001, 1002], [0, 0, 0])
    batch = torch.from_numpy(images)
    with torch.no_grad():
        emb = model.embed(batch)
        again = model.embed(batch)
        single = model.embed(batch[1:2])
    assert emb.shape == (3, 128)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3), rtol=0.0, atol=1e-5)
    torch.testing.assert_close(emb, again, rtol=0.0, atol=0.0)
    # eval-mode BatchNorm: an image's embedding does not depend on its batch
    torch.testing.assert_close(single[0], emb[1], rtol=1e-5, atol=1e-5)


def test_embedding_is_differentiable_wrt_the_image(model: VerificationModel) -> None:
    images, _ = synthetic_batch(0, [1003], [0])
    x = torch.from_numpy(images).requires_grad_(True)
    model.embed(x)[0, 0].backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    assert float(x.grad.abs().sum()) > 0.0


def test_rank_auc_known_values() -> None:
    assert rank_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert rank_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert rank_auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert rank_auc(np.array([1.0]), np.array([1.0])) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        rank_auc(np.array([]), np.array([1.0]))


def test_held_out_auc_and_masking_control(model: VerificationModel) -> None:
    metrics = evaluate_synthetic_model(model, world_seed=0, n_pairs=150, n_identities=50)
    assert metrics["n_genuine"] == metrics["n_impostor"] == 150
    assert metrics["auc"] >= 0.95
    assert metrics["genuine_angle_mean_rad"] < metrics["impostor_angle_mean_rad"]
    # identity lives in the mask: masking it moves embeddings far more than masking background
    assert metrics["identity_mask_drift_mean_rad"] > 2.0 * metrics["background_drift_mean_rad"]
    assert metrics["identity_drift_exceeds_background_frac"] > 0.9
