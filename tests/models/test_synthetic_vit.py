# The shipped synthetic-world ViT (and the Inception-ResNet CNN beside it): loading, provenance,
# held-out verification as the CNN's is measured, and every registered method on the ViT.
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.attribution.base import UnsupportedModelError
from faceattr.attribution.registry import METHODS, build_method
from faceattr.data.synthetic import synthetic_batch
from faceattr.errors import InputError, MissingFileError
from faceattr.models.base import VerificationModel
from faceattr.models.loading import MODEL_NAMES, load_model
from faceattr.models.synthetic_eval import evaluate_synthetic_model
from faceattr.models.synthetic_vit import (
    SYNTHETIC_VIT_WEIGHTS_ENV,
    SyntheticFaceViT,
    attention_modules,
    init_vit_parameters,
    load_synthetic_vit,
    vit_weights_path,
)
from faceattr.rng import torch_generator
from faceattr.testing import BUILTIN_CHECK_PARAMS
from tests.attribution.common import make_batch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
VIT = ROOT / "faceattr/assets/models/synthetic_vit.pt"
INCEPTION = ROOT / "faceattr/assets/models/synthetic_inception.pt"

# Registered methods that cannot explain the ViT, and why (an explicit refusal, never a map).
UNSUPPORTED_ON_VIT = {
    "guided_backprop": "the network uses gelu",  # guided backprop overrides only nn.ReLU
    "guided_grad_cam": "the network uses gelu",
    "branch_attention_cam": "it has no Inception block",
    "lrp": "no LRP rule is declared for layers BatchNorm1d, GELU, LayerNorm, Softmax",
}
# Flat on the ViT, measured: the auto CAM layer is the patch projection (the only Conv2d) and
# the rectified LayerCAM sum is zero there; a run counts such maps as trivial (failed) pairs.
FLAT_ON_VIT = {"constant", "layer_cam"}


@pytest.fixture(scope="module")
def vit() -> VerificationModel:
    return load_synthetic_vit(VIT)


def test_architecture_names_and_size() -> None:
    network = SyntheticFaceViT().eval()
    init_vit_parameters(network, torch_generator(0, "test_vit"))
    names = [name for name, _ in attention_modules(network)]
    assert names == [f"blocks.{i}.attn" for i in range(4)]
    assert 100_000 <= sum(p.numel() for p in network.parameters()) <= 300_000
    with torch.no_grad():
        assert network(torch.zeros(2, 3, 64, 64)).shape == (2, 128)


def test_init_is_keyed_by_the_generator() -> None:
    def build(seed: int) -> SyntheticFaceViT:
        network = SyntheticFaceViT()
        init_vit_parameters(network, torch_generator(seed, "test_vit"))
        return network

    a, b, c = build(0), build(0), build(1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0.0, atol=0.0, msg=name)
    assert not torch.equal(a.pos_embed, c.pos_embed)
    assert not torch.equal(a.blocks[0].attn.qkv.weight, c.blocks[0].attn.qkv.weight)


def test_shipped_weights_load_with_provenance(vit: VerificationModel) -> None:
    assert "synthetic_vit" in MODEL_NAMES
    assert "synthetic_inception" in MODEL_NAMES
    assert vit.name == "synthetic_vit"
    assert not vit.network.training
    assert vit.weights_sha256 == hashlib.sha256(VIT.read_bytes()).hexdigest()
    assert VIT.stat().st_size < 5_000_000
    state = torch.random.get_rng_state()
    by_name = load_model("synthetic_vit")  # through the registry, the shipped file
    assert torch.equal(state, torch.random.get_rng_state())  # loading draws nothing
    assert by_name.weights_sha256 == vit.weights_sha256


def test_env_overrides_and_bad_files_give_one_line_errors(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SYNTHETIC_VIT_WEIGHTS_ENV, str(tmp_path / "w.pt"))
    assert vit_weights_path() == tmp_path / "w.pt"
    with pytest.raises(MissingFileError, match=r"w\.pt.*train_synthetic_vit") as info:
        load_synthetic_vit()
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not a SyntheticFaceViT state_dict"):
        load_synthetic_vit(ROOT / "faceattr/assets/models/synthetic_cnn.pt")


def test_embeddings_are_unit_norm_and_batch_independent(vit: VerificationModel) -> None:
    images, _ = synthetic_batch(0, [1000, 1001, 1002], [0, 0, 0])
    batch = torch.from_numpy(images)
    with torch.no_grad():
        emb, single = vit.embed(batch), vit.embed(batch[1:2])
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3), rtol=0.0, atol=1e-5)
    torch.testing.assert_close(single[0], emb[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weights", [VIT, INCEPTION], ids=["vit", "inception"])
def test_held_out_auc_and_masking_control(weights: Path) -> None:
    # as the CNN is measured (tests/test_synthetic_cnn.py); fixtures/README.md: 500 pairs
    model = load_model("synthetic_vit" if weights == VIT else "synthetic_inception",
                       weights_path=weights)
    metrics = evaluate_synthetic_model(model, world_seed=0, n_pairs=150, n_identities=50)
    assert metrics["auc"] >= 0.95, metrics
    assert metrics["identity_mask_drift_mean_rad"] > 2.0 * metrics["background_drift_mean_rad"]
    assert metrics["identity_drift_exceeds_background_frac"] > 0.9, metrics


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_runs_on_the_vit(vit: VerificationModel, name: str) -> None:
    method = build_method(name, name, dict(BUILTIN_CHECK_PARAMS[name]), "test")
    batch = make_batch(vit, 2)
    if name in UNSUPPORTED_ON_VIT:
        with pytest.raises(UnsupportedModelError, match=UNSUPPORTED_ON_VIT[name]):
            method.attribute(batch)
        return
    maps = method.attribute(batch)
    assert maps.shape == (2, 64, 64)
    assert np.isfinite(maps).all()
    if name not in FLAT_ON_VIT:
        assert (np.ptp(maps, axis=(1, 2)) > 0).all(), f"{name} gave a flat map on the ViT"


STUDIES = ROOT / "validation" / "protocols" / "studies"
ARMS = ("vit_synthetic", "vit_synthetic_cnn", "attention_cam_synthetic")


def test_study_protocols_load_and_share_their_pairs() -> None:
    from faceattr.protocol import load_protocol

    protocols = {arm: load_protocol(STUDIES / f"{arm}.toml") for arm in ARMS}
    models = {arm: p.model.name for arm, p in protocols.items()}
    assert models == {"vit_synthetic": "synthetic_vit", "vit_synthetic_cnn": "synthetic_cnn",
                      "attention_cam_synthetic": "synthetic_inception"}
    # the same seed and [data]: the same pair ids, so the arms join on pair_id
    assert len({(p.seed, p.data.source, p.data.params) for p in protocols.values()}) == 1
    methods = {m.method for m in protocols["vit_synthetic"].methods}
    assert {"attention_rollout", "gradient_rollout", "saliency", "integrated_gradients"} <= methods
