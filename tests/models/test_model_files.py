"""Models from files (issue #18 item 3): ONNX via onnx2torch, TorchScript, state_dict + factory.

Every model here is built in the test from an explicit torch.Generator (no third-party weights):
exported to a file, loaded back through :func:`faceattr.models.files.load_model_file`, and
compared with the source torch module — embeddings and saliency maps (the gradient of the
verification score <f(x_a), f(x_b)> w.r.t. x_a) — and, for ONNX, with onnxruntime.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from faceattr.config import ProtocolError, TableReader
from faceattr.errors import InputError, MissingFileError
from faceattr.models import _torchvision_shim as shim
from faceattr.models.base import VerificationModel, verification_score
from faceattr.models.cache import sha256_file
from faceattr.models.files import (
    ModelFileSpec,
    PixelAdapter,
    load_model_file,
    read_model_file_spec,
)
from faceattr.models.onnx_import import BATCH_DIM_PARAM, make_batch_dynamic

SIZE = 32
EMB = 12
MEAN = (120.0, 110.0, 100.0)
STD = (60.0, 62.0, 64.0)
FACTORY = "tests.models.test_model_files:make_net"
EMBEDDING_ATOL = 1e-5
SALIENCY_RTOL = 1e-4


class SmallNet(nn.Module):
    """Conv-BN-ReLU x2, flatten, linear: takes normalised (N, 3, 32, 32) NCHW input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, EMB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


class FixedBatchNet(SmallNet):
    """The same network with a batch of 1 baked into its reshape (``view(1, -1)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.view(1, -1))


class NhwcNet(nn.Module):
    """Takes (N, H, W, 3) input; a 1x1 conv makes the three channels distinguishable."""

    def __init__(self) -> None:
        super().__init__()
        self.body = SmallNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 3, 1, 2))


class DetachedNet(SmallNet):
    """Cuts the autograd graph: no attribution method can explain it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).detach()


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator) * 0.3
            tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return net.eval()


def make_net() -> nn.Module:
    """The state_dict factory (``tests.models.test_model_files:make_net``): random weights, so
    only a state_dict that is loaded can make it match the source network."""
    return _randomise(SmallNet(), seed=99)


def source_net(cls: type[nn.Module] = SmallNet) -> nn.Module:
    return _randomise(cls(), seed=7)


@contextmanager
def _quiet() -> Iterator[None]:
    # torch 2.13 deprecates the TorchScript-based ONNX exporter and torch.jit.trace/script
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def export_onnx(net: nn.Module, path: Path, *, dynamic: bool = True,
                example: torch.Tensor | None = None) -> Path:
    x = torch.zeros(1, 3, SIZE, SIZE) if example is None else example
    axes = {"image": {0: "batch"}, "embedding": {0: "batch"}} if dynamic else None
    with _quiet():
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["image"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17)
    return path


def export_torchscript(net: nn.Module, path: Path, *, script: bool = False) -> Path:
    with _quiet():
        module = torch.jit.script(net) if script else torch.jit.trace(
            net, torch.zeros(2, 3, SIZE, SIZE))
        torch.jit.save(module, str(path))
    return path


def table(path: Path, file_format: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"format": file_format, "path": str(path), "input_size_px": SIZE,
                            "channel_order": "rgb", "mean": list(MEAN), "std": list(STD),
                            "embedding_dim": EMB, "alignment": "center"}
    if file_format == "state_dict":
        base["factory"] = FACTORY
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def spec_for(path: Path, file_format: str, **overrides: Any) -> ModelFileSpec:
    return read_model_file_spec(TableReader(table(path, file_format, **overrides),
                                            "p.toml [model]"), path.parent)


def reference_embed(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return nn.functional.normalize(net((images * 255.0 - mean) / std), dim=1)


def saliency(embed: Callable[[torch.Tensor], torch.Tensor], x_a: torch.Tensor,
             x_b: torch.Tensor) -> torch.Tensor:
    """d <f(x_a), f(x_b)> / d x_a, with x_b fixed."""
    probe = x_a.clone().requires_grad_(True)
    score = verification_score(embed(probe), embed(x_b).detach()).sum()
    (grad,) = torch.autograd.grad(score, probe)
    return grad


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def parity(model: VerificationModel, net: nn.Module) -> tuple[float, float]:
    """(embedding max abs diff, saliency max diff relative to the map's max |.|)."""
    x_a, x_b = images(4, 1), images(4, 2)
    with torch.no_grad():
        emb_diff = float((model.embed(x_a) - reference_embed(net, x_a)).abs().max())
    ours = saliency(model.embed, x_a, x_b)
    theirs = saliency(lambda x: reference_embed(net, x), x_a, x_b)
    rel = float((ours - theirs).abs().max() / theirs.abs().max())
    return emb_diff, rel


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("model_files")
    net = source_net()
    state = folder / "small.pt"
    torch.save(net.state_dict(), state)
    return {"onnx": export_onnx(net, folder / "small.onnx"),
            "torchscript": export_torchscript(net, folder / "small_traced.pt"),
            "scripted": export_torchscript(net, folder / "small_scripted.pt", script=True),
            "state_dict": state}


# --- parity with the source network -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["onnx", "torchscript", "scripted", "state_dict"])
def test_loaded_model_matches_source_embeddings_and_saliency(files: dict[str, Path],
                                                             kind: str) -> None:
    file_format = "torchscript" if kind == "scripted" else kind
    spec = spec_for(files[kind], file_format)
    model = load_model_file(spec)
    emb_diff, sal_rel = parity(model, source_net())
    print(f"{kind}: embedding max abs diff {emb_diff:.2e}, saliency max rel diff {sal_rel:.2e}")
    assert emb_diff <= EMBEDDING_ATOL
    assert sal_rel <= SALIENCY_RTOL
    assert model.name == files[kind].stem
    assert model.weights_sha256 == sha256_file(files[kind])
    assert (model.pixel_mean, model.pixel_scale, model.input_size_px) == (0.0, 1.0, SIZE)
    assert not model.network.training


def _ort_embedder(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
    """onnxruntime's L2-normalised embedding of [0, 1] images, with the test's preprocessing."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    mean = np.asarray(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, dtype=np.float32).reshape(1, 3, 1, 1)

    def embed(x: torch.Tensor) -> np.ndarray:
        feed = ((x.numpy() * 255.0 - mean) / std).astype(np.float32)
        (raw,) = session.run(None, {"image": feed})
        raw = np.asarray(raw, dtype=np.float64)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)

    return embed


def test_onnx_conversion_matches_onnxruntime_embeddings(files: dict[str, Path]) -> None:
    ort_embed = _ort_embedder(files["onnx"])
    model = load_model_file(spec_for(files["onnx"], "onnx"))
    x = images(4, 3)
    with torch.no_grad():
        ours = model.embed(x).numpy()
    emb_diff = float(np.abs(ours - ort_embed(x)).max())
    print(f"onnx vs onnxruntime: embedding max abs diff {emb_diff:.2e}")
    assert emb_diff <= EMBEDDING_ATOL


class SmoothNet(SmallNet):
    """SmallNet with tanh / softplus: finite differences need no ReLU kinks in their way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.bn1(self.conv1(x)))
        x = nn.functional.softplus(self.conv2(x))
        return self.fc(x.flatten(1))


def test_onnx_conversion_saliency_matches_onnxruntime_derivative(tmp_path: Path) -> None:
    # onnxruntime has no gradients: the converted graph's saliency, projected on a random
    # direction v, against onnxruntime's central difference (s(x + h v) - s(x - h v)) / 2h
    path = export_onnx(source_net(SmoothNet), tmp_path / "smooth.onnx")
    ort_embed = _ort_embedder(path)
    model = load_model_file(spec_for(path, "onnx"))
    x_a, x_b = images(4, 3), images(4, 4)
    grad = saliency(model.embed, x_a, x_b)
    direction = torch.randn(x_a.shape, generator=torch.Generator().manual_seed(5))
    h = 1e-3
    partner = ort_embed(x_b)
    plus = (ort_embed(x_a + h * direction) * partner).sum(axis=1)
    minus = (ort_embed(x_a - h * direction) * partner).sum(axis=1)
    numeric = (plus - minus) / (2 * h)
    analytic = (grad * direction).flatten(1).sum(dim=1).double().numpy()
    dir_rel = float(np.abs(numeric - analytic).max() / np.abs(analytic).max())
    print(f"onnx saliency vs onnxruntime central difference (h = {h}): max rel diff "
          f"{dir_rel:.2e}")
    assert dir_rel <= 1e-3


def test_fixed_batch_onnx_graph_is_made_dynamic(tmp_path: Path) -> None:
    net = source_net(FixedBatchNet)
    path = export_onnx(net, tmp_path / "fixed.onnx", dynamic=False)
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    fixed, rewritten = make_batch_dynamic(proto)
    assert rewritten == 1
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == BATCH_DIM_PARAM
    model = load_model_file(spec_for(path, "onnx"))
    emb_diff, sal_rel = parity(model, source_net(SmallNet))  # same weights, any batch
    print(f"fixed-batch onnx: embedding max abs diff {emb_diff:.2e}, saliency {sal_rel:.2e}")
    assert emb_diff <= EMBEDDING_ATOL
    assert sal_rel <= SALIENCY_RTOL


def test_dynamic_graph_is_left_alone(files: dict[str, Path]) -> None:
    proto = onnx.load(str(files["onnx"]))
    same, rewritten = make_batch_dynamic(proto)
    assert same is proto
    assert rewritten == -1


# --- the pixel adapter: BGR, NHWC, per-channel mean / std -------------------------------------

class _Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x.flatten(1)


def test_adapter_reorders_normalises_and_permutes_like_manual_preprocessing() -> None:
    recorder = _Recorder()
    mean_bgr, std_bgr = (104.0, 117.0, 123.0), (57.0, 58.0, 59.0)
    adapter = PixelAdapter(recorder, channel_order="bgr", layout="nhwc", mean=mean_bgr,
                           std=std_bgr)
    model = VerificationModel(name="m", network=adapter, input_size_px=4, pixel_mean=0.0,
                              pixel_scale=1.0, weights_sha256="")
    image = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    model.embed(image)
    pixels = image * 255.0
    manual = np.empty((2, 4, 4, 3), dtype=np.float32)
    for out_channel, rgb_channel in enumerate((2, 1, 0)):  # B, G, R
        manual[..., out_channel] = ((pixels[:, rgb_channel].numpy() - mean_bgr[out_channel])
                                    / std_bgr[out_channel])
    np.testing.assert_allclose(recorder.seen[0].numpy(), manual, rtol=0, atol=2e-6)
    assert recorder.seen[0].shape == (2, 4, 4, 3)


def test_bgr_nhwc_model_file_matches_manual_preprocessing(tmp_path: Path) -> None:
    net = source_net(NhwcNet)
    path = export_onnx(net, tmp_path / "nhwc.onnx", example=torch.zeros(1, SIZE, SIZE, 3))
    mean_bgr, std_bgr = (104.0, 117.0, 123.0), (57.0, 58.0, 59.0)
    spec = spec_for(path, "onnx", channel_order="bgr", layout="nhwc", mean=list(mean_bgr),
                    std=list(std_bgr))
    model = load_model_file(spec)
    x = images(3, 6)
    manual = ((x * 255.0).flip(1) - torch.tensor(mean_bgr).view(1, 3, 1, 1)) / torch.tensor(
        std_bgr).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = nn.functional.normalize(net(manual.permute(0, 2, 3, 1)), dim=1)
        got = model.embed(x)
        wrong_order = load_model_file(spec_for(path, "onnx", channel_order="rgb", layout="nhwc",
                                               mean=list(mean_bgr), std=list(std_bgr))).embed(x)
    assert float((got - expected).abs().max()) <= EMBEDDING_ATOL
    assert float((wrong_order - expected).abs().max()) > 1e-3  # the test sees the order
    grad = saliency(model.embed, x, images(3, 7))
    assert bool(torch.isfinite(grad).all())
    assert float(grad.abs().max()) > 0


def test_nhwc_graph_declared_nchw_names_the_layout(tmp_path: Path) -> None:
    path = export_onnx(source_net(NhwcNet), tmp_path / "nhwc.onnx",
                       example=torch.zeros(1, SIZE, SIZE, 3))
    with pytest.raises(InputError, match="set layout = 'nhwc'"):
        load_model_file(spec_for(path, "onnx"))


# --- one-line errors ---------------------------------------------------------------------------

def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def _onnx_graph(path: Path, nodes: list[onnx.NodeProto], output_shape: list[int | str], *,
                opset: int = 18) -> Path:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                   ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, output_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_unsupported_op_names_the_op_and_opset(tmp_path: Path) -> None:
    path = _onnx_graph(tmp_path / "mish.onnx", [
        helper.make_node("Mish", ["image"], ["m"], name="act1"),
        helper.make_node("GlobalAveragePool", ["m"], ["p"]),
        helper.make_node("Flatten", ["p"], ["embedding"])], ["batch", 3])
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, "onnx", embedding_dim=3))
    message = _one_line(exc)
    print(message)
    assert "cannot convert op 'Mish'" in message
    assert "node 'act1'" in message
    assert "opset 18" in message
    assert "onnx2torch 1.5.15" in message


def test_converter_failure_names_the_node(tmp_path: Path) -> None:
    # onnx2torch has a Reshape converter, but it refuses allowzero = 1 while converting: the
    # node is read from the failing conversion
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [0, -1])
    path = _onnx_graph(tmp_path / "allowzero.onnx", [
        helper.make_node("Constant", [], ["s"], value=shape),
        helper.make_node("Reshape", ["image", "s"], ["embedding"], name="flat", allowzero=1)],
        ["batch", 3 * SIZE * SIZE])
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, "onnx", embedding_dim=3 * SIZE * SIZE))
    message = _one_line(exc)
    print(message)
    assert "cannot convert op 'Reshape' (node 'flat', domain 'ai.onnx', opset 18)" in message
    assert "allowzero=1" in message


def test_constant_output_graph_is_refused(tmp_path: Path) -> None:
    value = helper.make_tensor("c", TensorProto.FLOAT, [1, EMB],
                               np.linspace(0.1, 1.0, EMB).tolist())
    path = _onnx_graph(tmp_path / "constant.onnx", [
        helper.make_node("Constant", [], ["embedding"], value=value)], [1, EMB])
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, "onnx"))
    message = _one_line(exc)
    print(message)
    assert "does not depend on the input image" in message


@pytest.mark.parametrize("kind", ["onnx", "torchscript", "state_dict"])
def test_wrong_embedding_dim_is_refused(files: dict[str, Path], kind: str) -> None:
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(files[kind], kind, embedding_dim=EMB + 1))
    message = _one_line(exc)
    print(message)
    assert f"has {EMB} dimensions" in message
    assert f"embedding_dim = {EMB + 1}" in message


@pytest.mark.parametrize("kind", ["onnx", "torchscript", "state_dict"])
def test_wrong_input_size_is_refused(files: dict[str, Path], kind: str) -> None:
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(files[kind], kind, input_size_px=SIZE + 8))
    message = _one_line(exc)
    print(message)
    if kind == "onnx":  # the graph declares its size: caught before any forward
        assert f"32x32 px images, but input_size_px = {SIZE + 8}" in message
    else:  # the forward fails; TorchScript's reason is the bottom of its traceback
        assert f"fails on one {SIZE + 8}x{SIZE + 8} px image" in message
        assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in message
    assert "set input_size_px" in message


def test_sha256_mismatch_names_both_hashes(files: dict[str, Path]) -> None:
    pin = "0" * 64
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(files["onnx"], "onnx", sha256=pin))
    message = _one_line(exc)
    print(message)
    assert sha256_file(files["onnx"]) in message
    assert pin in message
    model = load_model_file(spec_for(files["onnx"], "onnx",
                                     sha256=sha256_file(files["onnx"]).upper()))
    assert model.weights_sha256 == sha256_file(files["onnx"])


@pytest.mark.parametrize(("factory", "expected"), [
    ("tests.models.no_such_module:make_net", "cannot be imported (ModuleNotFoundError"),
    ("tests.models.test_model_files:no_such_factory", "cannot be imported (AttributeError"),
    ("tests.models.test_model_files:EMB", "is not callable (type int)"),
    ("tests.models.test_model_files:images", "raised TypeError"),
    ("tests.models.test_model_files:table", "raised TypeError"),
])
def test_bad_factory_is_refused(files: dict[str, Path], factory: str, expected: str) -> None:
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(files["state_dict"], "state_dict", factory=factory))
    message = _one_line(exc)
    print(message)
    assert factory in message
    assert expected in message


def test_state_dict_with_missing_and_unexpected_keys_is_refused(files: dict[str, Path],
                                                                tmp_path: Path) -> None:
    state = torch.load(files["state_dict"], weights_only=True)
    state["fc.extra"] = state.pop("fc.weight")
    path = tmp_path / "renamed.pt"
    torch.save(state, path)
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, "state_dict"))
    message = _one_line(exc)
    print(message)
    assert "missing keys: 1, first 'fc.weight'" in message
    assert "unexpected keys: 1, first 'fc.extra'" in message


def test_missing_file_is_a_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as exc:
        load_model_file(spec_for(tmp_path / "absent.onnx", "onnx"))
    assert "model file not found" in _one_line(exc)


@pytest.mark.parametrize("kind", ["onnx", "torchscript", "state_dict"])
def test_garbage_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x00not a model\xff" * 10)
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, kind))
    message = _one_line(exc)
    print(message)
    assert str(path) in message


def test_fixed_batch_torchscript_is_refused(tmp_path: Path) -> None:
    net = source_net(FixedBatchNet)
    with _quiet():
        traced = torch.jit.trace(net, torch.zeros(1, 3, SIZE, SIZE))
        torch.jit.save(traced, str(tmp_path / "fixed.pt"))
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(tmp_path / "fixed.pt", "torchscript"))
    message = _one_line(exc)
    print(message)
    assert "batch of 2" in message
    assert "batch size looks fixed" in message
    assert "TorchScript interpreter" not in message


def test_non_differentiable_model_is_refused(tmp_path: Path) -> None:
    path = export_torchscript(source_net(DetachedNet), tmp_path / "detached.pt")
    with pytest.raises(InputError) as exc:
        load_model_file(spec_for(path, "torchscript"))
    message = _one_line(exc)
    print(message)
    assert "not differentiable" in message


# --- reading the [model] table -----------------------------------------------------------------

def test_reader_resolves_relative_path_and_defaults(tmp_path: Path) -> None:
    spec = read_model_file_spec(TableReader(
        {"format": "onnx", "path": "models/net.onnx", "input_size_px": 112,
         "channel_order": "bgr", "mean": 127.5, "scale": 128.0, "embedding_dim": 512,
         "alignment": "arcface_112"}, "p.toml [model]"), tmp_path)
    assert spec.path == (tmp_path / "models" / "net.onnx").resolve()
    assert spec.mean == (127.5, 127.5, 127.5)
    assert spec.std == (128.0, 128.0, 128.0)
    assert (spec.layout, spec.name, spec.sha256, spec.factory) == ("nchw", "net", None, None)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"format": "keras"}, "format = 'keras' is not allowed"),
    ({"channel_order": "rgbx"}, "channel_order = 'rgbx' is not allowed"),
    ({"layout": "chw"}, "layout = 'chw' is not allowed"),
    ({"std": None}, "neither of 'std' and 'scale' given"),
    ({"scale": 2.0}, "both of 'std' and 'scale' given"),
    ({"mean": None}, "missing required key 'mean'"),
    ({"mean": [1.0, 2.0]}, "mean = [1.0, 2.0] is not allowed"),
    ({"std": [1.0, 0.0, 1.0]}, "expected a positive number"),
    ({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, "look like 0..1 units"),
    ({"factory": FACTORY}, "factory = 'tests.models.test_model_files:make_net' is not allowed"),
    ({"sha256": "abc"}, "sha256 = 'abc' is not allowed"),
    ({"name": "my model"}, "name = 'my model' is not allowed"),
    ({"input_size_px": 4}, "input_size_px = 4 is not allowed"),
    ({"colour": "rgb"}, "unknown key 'colour'"),
])
def test_reader_refuses_bad_values(tmp_path: Path, overrides: dict[str, Any],
                                   expected: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        read_model_file_spec(TableReader(table(tmp_path / "m.onnx", "onnx", **overrides),
                                         "p.toml [model]"), tmp_path)
    assert expected in _one_line(exc)


def test_reader_requires_factory_for_state_dict(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="missing required key 'factory'"):
        read_model_file_spec(TableReader(table(tmp_path / "m.pt", "state_dict", factory=None),
                                         "p.toml [model]"), tmp_path)


def test_reader_records_every_key_for_the_protocol_reference() -> None:
    from faceattr.config import RecordingReader

    reader = RecordingReader("[model] format = ...")
    read_model_file_spec(reader, Path())
    keys = {entry["key"]: entry for entry in reader.keys}
    assert list(keys) == ["format", "path", "sha256", "input_size_px", "channel_order", "layout",
                          "mean", "std", "scale", "embedding_dim", "alignment", "factory",
                          "name"]
    assert keys["mean"]["type"] == "number or list of 3 numbers"
    assert "0..255 pixel units" in keys["mean"]["allowed"]


# --- onnx2torch without torchvision ------------------------------------------------------------

def test_onnx2torch_imports_without_torchvision() -> None:
    code = ("import importlib.util, sys\n"
            "from faceattr.models._torchvision_shim import import_onnx2torch\n"
            "vision = importlib.util.find_spec('torchvision') is not None\n"
            "module = import_onnx2torch()\n"
            "assert callable(module.convert)\n"
            "assert vision or not any(n.split('.')[0] == 'torchvision' for n in sys.modules)\n"
            "print('torchvision installed' if vision else 'no torchvision')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    print(done.stdout.strip())


def test_shim_box_convert_and_roi_align() -> None:
    boxes = torch.tensor([[10.0, 20.0, 4.0, 6.0]])  # cx, cy, w, h
    xyxy = shim.box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy")
    assert xyxy.tolist() == [[8.0, 17.0, 12.0, 23.0]]
    assert shim.box_convert(xyxy, in_fmt="xyxy", out_fmt="xywh").tolist() == [[8.0, 17.0, 4.0,
                                                                                6.0]]
    assert torch.equal(shim.box_convert(shim.box_convert(xyxy, "xyxy", "cxcywh"), "cxcywh",
                                        "xyxy"), xyxy)
    with pytest.raises(ValueError, match="unsupported box format"):
        shim.box_convert(boxes, in_fmt="yxyx", out_fmt="xyxy")
    with pytest.raises(NotImplementedError, match="RoiAlign"):
        shim.roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5), 2)


def test_converted_nms_runs_on_the_shim() -> None:
    # onnx2torch's NonMaxSuppression converter calls torchvision.ops.nms / box_convert: with no
    # torchvision, the stand-in's (bound at import) must serve them after conversion
    from faceattr.models.onnx_import import convert_onnx

    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou"],
                          ["selected"], center_point_box=1)], "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 3])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
        initializer=[helper.make_tensor("max_out", TensorProto.INT64, [1], [3]),
                     helper.make_tensor("iou", TensorProto.FLOAT, [1], [0.5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    network = convert_onnx(model, path=Path("nms.onnx"))
    boxes = torch.tensor([[[5.0, 5.0, 10.0, 10.0], [5.5, 5.0, 10.0, 10.0],
                           [30.0, 30.0, 4.0, 4.0]]])  # centre x, centre y, w, h
    scores = torch.tensor([[[0.9, 0.8, 0.7]]])
    assert network(boxes, scores).tolist() == [[0, 0, 0], [0, 0, 2]]
