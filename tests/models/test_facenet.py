from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.data.images import load_rgb_uint8
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.experiments.gate import model_gate
from faceattr.fetch import DemoAssets
from faceattr.models import _torchvision_shim as shim
from faceattr.models.base import embed_batched, verification_score
from faceattr.models.facenet import (
    FACENET_WEIGHTS_ENV,
    find_facenet_weights,
    load_facenet,
    mtcnn_detect,
    random_facenet,
)
from faceattr.models.loading import load_model
from faceattr.rng import numpy_generator


@pytest.fixture(scope="module")
def random_model():  # type: ignore[no-untyped-def]
    return random_facenet(0, n_calibration=32, batch_size=16)


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    # the definition, pair by pair: keep a box unless a kept higher-scoring box overlaps it
    keep: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda j: -scores[j]):
        ok = True
        for k in keep:
            x1, y1 = max(boxes[i, 0], boxes[k, 0]), max(boxes[i, 1], boxes[k, 1])
            x2, y2 = min(boxes[i, 2], boxes[k, 2]), min(boxes[i, 3], boxes[k, 3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_k = (boxes[k, 2] - boxes[k, 0]) * (boxes[k, 3] - boxes[k, 1])
            if inter / (area_i + area_k - inter) > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("trial", range(5))
def test_shim_nms_matches_the_definition_on_random_boxes(trial: int) -> None:
    rng = numpy_generator(0, "test_nms", trial)
    xy = rng.uniform(0, 100, size=(60, 2))
    wh = rng.uniform(5, 40, size=(60, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.permutation(60).astype(np.float64)
    keep = shim.nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(), 0.5)
    assert keep.tolist() == reference_nms(boxes, scores, 0.5)


def test_shim_batched_nms_keeps_categories_apart() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert shim.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert shim.batched_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.5).tolist() == [0]


def test_shim_to_tensor_follows_torchvision() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = shim.to_tensor(img)
    assert out.shape == (3, 2, 3)
    assert out.dtype == torch.float32
    assert out[2, 1, 2].item() == pytest.approx(17 / 255)
    assert torch.equal(shim.to_tensor(img.astype(np.float32)), torch.from_numpy(
        img.astype(np.float32).transpose(2, 0, 1)))


def test_facenet_import_leaves_no_fake_torchvision_behind() -> None:
    module = shim.import_facenet_pytorch()
    assert hasattr(module, "InceptionResnetV1")
    fake = sys.modules.get("torchvision")
    assert fake is None or not getattr(fake, "_faceattr_shim", False)


def test_random_facenet_preprocessing_and_spread(random_model) -> None:  # type: ignore[no-untyped-def]
    assert (random_model.input_size_px, random_model.pixel_mean, random_model.pixel_scale) == (
        160, 127.5, 128.0)
    images = torch.rand((6, 3, 160, 160), generator=torch.Generator().manual_seed(3))
    emb = embed_batched(random_model, images, chunk_size=6)
    cos = emb @ emb.T
    off_diagonal = cos[~torch.eye(6, dtype=torch.bool)]
    assert emb.shape == (6, 512)
    assert float(off_diagonal.mean()) < 0.9  # BatchNorm re-estimated: not a constant map


def test_weights_file_round_trip(random_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = dict(random_model.network.state_dict())
    state["logits.weight"] = torch.zeros((3, 512))  # the released files carry a classifier
    state["logits.bias"] = torch.zeros(3)
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(state, path)
    loaded = load_model("facenet_vggface2", weights_path=path)
    assert loaded.name == "facenet_vggface2"
    assert len(loaded.weights_sha256) == 64
    x = torch.rand((2, 3, 160, 160), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(loaded.embed(x), random_model.embed(x), atol=1e-6)


def test_missing_facenet_weights_is_one_line_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(FACENET_WEIGHTS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"FaceNet casia-webface weights not found \(torch "
                       r"cache: .*20180408-102900-casia-webface\.pt\); download https://"):
        load_facenet("casia-webface")
    with pytest.raises(FileNotFoundError, match=r"weights file: .*nope\.pt"):
        find_facenet_weights("vggface2", tmp_path / "nope.pt")
    monkeypatch.setenv(FACENET_WEIGHTS_ENV, str(tmp_path / "env.pt"))
    with pytest.raises(FileNotFoundError, match=r"FACEATTR_FACENET_WEIGHTS: .*env\.pt"):
        load_facenet("vggface2")


def test_corrupt_facenet_weights_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.pt: not a loadable FaceNet state_dict"):
        load_facenet("vggface2", bad)


def test_random_facenet_fails_the_model_gate(random_model) -> None:  # type: ignore[no-untyped-def]
    source = SyntheticPairSource(world_seed=0, n_pairs=40, genuine_fraction=0.5,
                                 first_identity=1000, sampling_seed=0)
    pairs = source.pairs()

    def batch(ids: list[str]) -> torch.Tensor:
        small = torch.from_numpy(np.stack([source.load_image(i).image for i in ids]))
        return torch.nn.functional.interpolate(small, size=160, mode="bilinear",
                                               align_corners=False).clamp(0, 1)

    emb_a = embed_batched(random_model, batch([p.image_a for p in pairs]), chunk_size=40)
    emb_b = embed_batched(random_model, batch([p.image_b for p in pairs]), chunk_size=40)
    scores = verification_score(emb_a, emb_b).double().numpy()
    labels = np.array([p.is_genuine for p in pairs])
    gate = model_gate(random_model.name, scores, labels, min_auc=0.9)
    print(f"random FaceNet gate: AUC {gate.auc:.3f}, passed={gate.passed}")
    assert not gate.passed
    assert 0.3 < gate.auc < 0.8


def test_mtcnn_finds_the_face_dlib_found(demo_assets: DemoAssets) -> None:
    rgb = load_rgb_uint8(demo_assets.photos_dir / "obama.jpg")
    faces = mtcnn_detect(rgb)
    assert faces
    assert faces[0].probability > 0.99
    x1, y1, x2, y2 = faces[0].box_xyxy
    left, top, right, bottom = 349, 142, 617, 409  # dlib's HOG box (reference JSON)
    inter = max(0.0, min(x2, right) - max(x1, left)) * max(0.0, min(y2, bottom) - max(y1, top))
    iou = inter / ((x2 - x1) * (y2 - y1) + (right - left) * (bottom - top) - inter)
    assert iou > 0.5
    dlib_eyes = np.array([[(424 + 463) / 2, 216.5], [(570 + 528) / 2, 215.5]])
    assert np.abs(faces[0].landmarks_xy[:2] - dlib_eyes).max() < 10
