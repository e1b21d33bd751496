"""Verification models from a researcher's own files: ONNX, TorchScript or a ``state_dict``.

A protocol's ``[model]`` table names the file, its format and how the network wants its pixels
(:func:`read_model_file_spec`); :func:`load_model_file` loads it on the CPU, checks it, and
returns the same :class:`~faceattr.models.base.VerificationModel` every built-in model is, so
every attribution method and counterfactual runs on it unchanged. Example::

    [model]
    format = "onnx"                    # or "torchscript", "state_dict"
    path = "models/arcface_r50.onnx"   # relative to the protocol's folder
    sha256 = "9c1f..."                 # optional pin of the file
    input_size_px = 112
    channel_order = "rgb"              # or "bgr"
    layout = "nchw"                    # or "nhwc" (default "nchw")
    mean = 127.5                       # one number or [c0, c1, c2], in 0..255 pixel units
    scale = 127.5                      # or std = [c0, c1, c2]
    embedding_dim = 512
    alignment = "arcface_112"          # the template the images were aligned with
    # factory = "mypkg.nets:make_net"  # state_dict only: builds the nn.Module
    # name = "arcface_r50"             # record name; default: the file's stem

How each format becomes a differentiable torch module:

- ``onnx``: ``onnx.load``, then ``onnx2torch.convert`` (ENOT-AutoDL/onnx2torch 1.5.15,
  https://github.com/ENOT-AutoDL/onnx2torch), which rebuilds the graph from torch operations,
  so gradients flow to the input image (:mod:`faceattr.models.onnx_import`). A graph exported
  with a fixed batch of 1 is given a symbolic batch first.
- ``torchscript``: ``torch.jit.load(path, map_location="cpu")``.
- ``state_dict``: ``factory()`` (resolved with :func:`pkgutil.resolve_name`) builds the module,
  ``torch.load(path, weights_only=True)`` reads the tensors and ``load_state_dict(strict=True)``
  loads them (:func:`faceattr.models.base.read_state_dict`, :func:`load_checked_state_dict`).

The pixel convention lives inside the network: :class:`PixelAdapter` takes 0..255 RGB NCHW
images, reorders the channels (``bgr``), subtracts ``mean`` and divides by ``std`` per channel,
and permutes to NHWC when asked, then calls the file's network; the ``VerificationModel`` has
``pixel_mean = 0`` and ``pixel_scale = 1`` (its preprocessing only multiplies [0, 1] images by
255). All of it is differentiable, so saliency maps are gradients w.r.t. the [0, 1] RGB image.

Before a model is returned it must: accept one image at ``input_size_px``; return an
(N, ``embedding_dim``) embedding; give different embeddings for different images; give each
row of a batch of two the embedding it gets alone; and pass a finite, non-zero gradient of the
verification score back to the image. Each failure is a one-line
:class:`~faceattr.errors.InputError` naming the file and the fix.
"""

from __future__ import annotations

import math
import pkgutil
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import torch
from torch import nn

from faceattr.config import ProtocolError, RecordingReader, TableReader
from faceattr.errors import InputError, MissingFileError
from faceattr.models.base import (
    VerificationModel,
    _reason,
    load_checked_state_dict,
    read_state_dict,
)
from faceattr.models.cache import sha256_file

__all__ = ["CHANNEL_ORDERS", "FORMATS", "LAYOUTS", "ModelFileSpec", "PixelAdapter",
           "load_model_file", "read_model_file_spec"]

Format = Literal["onnx", "torchscript", "state_dict"]
ChannelOrder = Literal["rgb", "bgr"]
Layout = Literal["nchw", "nhwc"]

FORMATS: tuple[Format, ...] = ("onnx", "torchscript", "state_dict")
"""The model file formats :func:`load_model_file` reads."""
CHANNEL_ORDERS: tuple[ChannelOrder, ...] = ("rgb", "bgr")
"""Channel orders a network may expect."""
LAYOUTS: tuple[Layout, ...] = ("nchw", "nhwc")
"""Tensor layouts a network may expect."""

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_FACTORY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
_CHECK_SEED = 20240918
"""Seed of the generator that draws the load-time check images (never a global RNG)."""
_SAME_EMBEDDING_ATOL = 1e-6
_BATCH_ATOL = 1e-4


@dataclass(frozen=True, slots=True)
class ModelFileSpec:
    """A ``[model]`` table naming a model file (see the module docstring for the TOML keys).

    Parameters
    ----------
    format : {"onnx", "torchscript", "state_dict"}
    path : pathlib.Path
        Absolute path of the model file (the reader resolves a relative path against the
        protocol's folder).
    sha256 : str or None
        Optional pin (lower-case hex); a file with another SHA-256 is refused.
    input_size_px : int
        Square input side the network expects.
    channel_order : {"rgb", "bgr"}
        Channel order of the network's input.
    layout : {"nchw", "nhwc"}
        Layout of the network's input.
    mean, std : tuple of 3 floats
        Per-channel ``(pixel - mean) / std`` in 0..255 pixel units, listed in the network's
        channel order (B, G, R when ``channel_order = "bgr"``).
    embedding_dim : int
        Dimension of the raw embedding.
    alignment : str
        Alignment template the images are prepared with (informational here).
    factory : str or None
        ``state_dict`` only: ``"package.module:callable"`` returning the ``nn.Module``.
    name : str
        Model name in records and stream keys.
    """

    format: Format
    path: Path
    sha256: str | None
    input_size_px: int
    channel_order: ChannelOrder
    layout: Layout
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embedding_dim: int
    alignment: str
    factory: str | None
    name: str


_PER_CHANNEL = "number or list of 3 numbers"
_PER_CHANNEL_DOC = "per channel, network's channel order, 0..255 pixel units"


def _raw(reader: TableReader, key: str, placeholder: object) -> object:
    """The raw value of a key that may be a number or a list of numbers (marked read).

    TableReader has no getter for that form: a real reader's ``_get`` gives the value (or
    ``None`` when absent); a :class:`RecordingReader` (the protocol reference) records the key
    through its public ``number`` getter, relabelled, and ``placeholder`` is returned.
    """
    if isinstance(reader, RecordingReader):
        reader.number(key, minimum=0.0 if key != "mean" else None)
        reader.keys[-1].update(type=_PER_CHANNEL if key != "scale" else "number",
                               allowed=_PER_CHANNEL_DOC if key == "mean" else
                               "positive; exactly one of std (per channel) and scale (all)")
        return placeholder
    return reader._get(key, None)


def _per_channel(reader: TableReader, key: str, value: object, *, positive: bool
                 ) -> tuple[float, float, float]:
    """A number (the same for all channels) or a list of 3 finite numbers."""
    items: list[object] = list(value) if isinstance(value, list) else [value] * 3
    numbers = [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]
    ok = len(items) == 3 and len(numbers) == 3 and all(
        math.isfinite(v) and (not positive or v > 0) for v in numbers)
    if not ok:
        sign = "positive " if positive else ""
        raise ProtocolError(f"{reader.where}: {key} = {value!r} is not allowed; expected a "
                            f"{sign}number or a list of 3 {sign}numbers (per channel, in 0..255 "
                            f"pixel units)")
    return numbers[0], numbers[1], numbers[2]


def _normalisation(reader: TableReader) -> tuple[tuple[float, float, float],
                                                 tuple[float, float, float]]:
    """``mean`` and ``std`` (or ``scale``), per channel, in pixel units."""
    where = reader.where
    raw_mean = _raw(reader, "mean", 0.0)
    raw_std, raw_scale = _raw(reader, "std", 1.0), _raw(reader, "scale", None)
    if raw_mean is None:
        raise ProtocolError(f"{where}: missing required key 'mean' (per-channel mean in 0..255 "
                            f"pixel units; 0 if the network takes raw pixels)")
    if (raw_std is None) == (raw_scale is None):
        both = "both" if raw_std is not None else "neither"
        raise ProtocolError(f"{where}: {both} of 'std' and 'scale' given; expected exactly one "
                            f"(std = [s0, s1, s2] per channel, or scale = s for all channels)")
    mean = _per_channel(reader, "mean", raw_mean, positive=False)
    if raw_std is not None:
        std = _per_channel(reader, "std", raw_std, positive=True)
    else:
        if isinstance(raw_scale, list):
            raise ProtocolError(f"{where}: scale = {raw_scale!r} is not allowed; expected one "
                                f"positive number (use std = [...] for per-channel values)")
        std = _per_channel(reader, "scale", raw_scale, positive=True)
    if 0 < max(abs(m) for m in mean) <= 1 and max(std) <= 1:
        raise ProtocolError(f"{where}: mean = {list(mean)} and std = {list(std)} look like 0..1 "
                            f"units; expected 0..255 pixel units (multiply both by 255)")
    return mean, std


def read_model_file_spec(reader: TableReader, base_dir: Path) -> ModelFileSpec:
    """Read a ``[model]`` table that names a model file; refuse unknown keys.

    The caller may read other keys of the same table (the gate's ``min_auc``, ...) from
    ``reader`` first; this function calls ``reader.finish()``. On a
    :class:`faceattr.config.RecordingReader` it records every key it accepts (the protocol
    reference) and checks nothing.

    Parameters
    ----------
    reader : faceattr.config.TableReader
        The ``[model]`` table.
    base_dir : pathlib.Path
        The protocol's folder; a relative ``path`` is resolved against it.

    Returns
    -------
    ModelFileSpec

    Raises
    ------
    faceattr.config.ProtocolError
        One line naming the key, the bad value and what is allowed (a missing key, a value
        outside its set, ``std`` and ``scale`` both or neither given, a ``mean`` / ``std`` that
        looks like 0..1 units, ``factory`` missing for ``state_dict`` or given for another
        format, an unsafe ``name``).
    """
    where = reader.where
    checking = not isinstance(reader, RecordingReader)
    file_format = cast("Format", reader.text("format", allowed=FORMATS))
    raw_path = reader.text("path")
    if not raw_path:
        raise ProtocolError(f"{where}: path = '' is not allowed; expected the model file")
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    path = path.resolve()
    sha256 = reader.text("sha256", default="") or None
    if sha256 is not None:
        if not _SHA256.fullmatch(sha256):
            raise ProtocolError(f"{where}: sha256 = {sha256!r} is not allowed; expected 64 hex "
                                f"digits (sha256sum of the model file)")
        sha256 = sha256.lower()
    input_size_px = reader.integer("input_size_px", minimum=8, maximum=4096)
    channel_order = cast("ChannelOrder", reader.text("channel_order", allowed=CHANNEL_ORDERS))
    layout = cast("Layout", reader.text("layout", default="nchw", allowed=LAYOUTS))
    mean, std = _normalisation(reader)
    embedding_dim = reader.integer("embedding_dim", minimum=1, maximum=65536)
    alignment = reader.text("alignment")
    if checking and not _SAFE_NAME.fullmatch(alignment):
        raise ProtocolError(f"{where}: alignment = {alignment!r} is not allowed; expected a "
                            f"template name such as 'center', 'mtcnn' or 'dlib_chip'")
    factory = reader.text("factory", default="") or None
    if checking and file_format == "state_dict" and factory is None:
        raise ProtocolError(f"{where}: missing required key 'factory' for format = "
                            f"'state_dict'; expected 'package.module:callable' returning the "
                            f"nn.Module the weights belong to")
    if file_format != "state_dict" and factory is not None:
        raise ProtocolError(f"{where}: factory = {factory!r} is not allowed for format = "
                            f"{file_format!r}; it applies to format = 'state_dict' only")
    if factory is not None and not _FACTORY.fullmatch(factory):
        raise ProtocolError(f"{where}: factory = {factory!r} is not allowed; expected "
                            f"'package.module:callable'")
    name = reader.text("name", default=path.stem)
    if checking and not _SAFE_NAME.fullmatch(name):
        raise ProtocolError(f"{where}: name = {name!r} is not allowed; expected letters, digits "
                            f"and . _ - (give name = ... when the file's stem has others)")
    reader.finish()
    return ModelFileSpec(format=file_format, path=path, sha256=sha256,
                         input_size_px=input_size_px, channel_order=channel_order,
                         layout=layout, mean=mean, std=std, embedding_dim=embedding_dim,
                         alignment=alignment, factory=factory, name=name)


class PixelAdapter(nn.Module):
    """0..255 RGB NCHW images to what the file's network expects, then the network.

    ``forward(x)`` computes ``net(permute((reorder(x) - mean) / std))``: ``reorder`` flips RGB to
    BGR when ``channel_order = "bgr"``, ``mean`` and ``std`` are per channel in the network's
    channel order, ``permute`` goes to NHWC when ``layout = "nhwc"``. Every step is a
    differentiable torch op.

    Parameters
    ----------
    network : torch.nn.Module
        The file's network (attribute ``net``, so its layers are ``net.<name>``).
    channel_order : {"rgb", "bgr"}
    layout : {"nchw", "nhwc"}
    mean, std : tuple of 3 floats
        In 0..255 pixel units.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, *, channel_order: ChannelOrder, layout: Layout,
                 mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.net = network
        self.bgr = channel_order == "bgr"
        self.nhwc = layout == "nhwc"
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, H, W) RGB in 0..255 to the network's output."""
        x = pixels.flip(1) if self.bgr else pixels
        x = (x - self.mean) / self.std
        if self.nhwc:
            x = x.permute(0, 2, 3, 1).contiguous()
        out: torch.Tensor = self.net(x)
        return out


def _load_onnx(spec: ModelFileSpec) -> nn.Module:
    import onnx

    from faceattr.models import onnx_import

    try:
        model = onnx.load(str(spec.path))
    except Exception as exc:  # noqa: BLE001 - protobuf / IO errors: the user's file is at fault
        raise InputError(f"{spec.path}: not a loadable ONNX model ({_reason(exc)}); export it "
                         f"with torch.onnx.export(model, example, path, dynamic_axes=...)"
                         ) from None
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise InputError(f"{spec.path}: not a valid ONNX model (onnx.checker: {_reason(exc)}); "
                         f"re-export it") from None
    onnx_import.check_graph_io(model, path=spec.path, input_size_px=spec.input_size_px,
                               layout=spec.layout)
    model, _ = onnx_import.make_batch_dynamic(model)
    return onnx_import.convert_onnx(model, path=spec.path)


def _load_torchscript(spec: ModelFileSpec) -> nn.Module:
    try:
        with warnings.catch_warnings():
            # torch 2.9+ deprecates torch.jit.load in favour of torch.export; files still exist
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load. is deprecated",
                                    category=DeprecationWarning)
            network = torch.jit.load(  # type: ignore[no-untyped-call]
                str(spec.path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - whatever torch raises, the user's file is at fault
        raise InputError(f"{spec.path}: not a loadable TorchScript file ({_reason(exc)}); save "
                         f"it with torch.jit.save(torch.jit.trace(model, example), path), or use "
                         f"format = 'state_dict' with a factory") from None
    if not isinstance(network, nn.Module):  # pragma: no cover - jit.load returns a module
        raise InputError(f"{spec.path}: TorchScript file holds a {type(network).__name__}")
    return network


def _load_state_dict(spec: ModelFileSpec) -> nn.Module:
    factory = spec.factory or ""
    fix = f"save network.state_dict() of the module {factory} builds"
    try:
        build = pkgutil.resolve_name(factory)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputError(f"{spec.path}: factory {factory!r} cannot be imported ({_reason(exc)}); "
                         f"expected 'package.module:callable' importable from this Python "
                         f"(check the spelling and that its package is installed or on "
                         f"PYTHONPATH)") from None
    if not callable(build):
        raise InputError(f"{spec.path}: factory {factory!r} is not callable (type "
                         f"{type(build).__name__}); expected a function or class returning an "
                         f"nn.Module")
    try:
        network = build()
    except Exception as exc:  # noqa: BLE001 - the user's factory failed
        raise InputError(f"{spec.path}: factory {factory!r} raised {_reason(exc)}; it must "
                         f"build the network with no arguments") from None
    if not isinstance(network, nn.Module):
        raise InputError(f"{spec.path}: factory {factory!r} returned a "
                         f"{type(network).__name__}, not a torch.nn.Module")
    state = read_state_dict(spec.path, what="model", fix=fix)
    load_checked_state_dict(network, state, spec.path, what=f"a {factory}", fix=fix)
    return network


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception)): (.+)$", re.MULTILINE)


def _forward_reason(exc: BaseException) -> str:
    """:func:`_reason`, but for a TorchScript interpreter failure the error at the bottom of its
    serialized traceback (the first line only says "operation failed in the interpreter")."""
    found = _ERROR_LINE.findall(str(exc))
    if "TorchScript interpreter" in str(exc) and found:
        name, text = found[-1]
        first = text.split(". ")[0].rstrip(".")
        return f"{name.rsplit('.', 1)[-1]}: {first[:97] + '...' if len(first) > 100 else first}"
    return _reason(exc)


def _check_model(model: VerificationModel, spec: ModelFileSpec) -> None:
    """The load-time checks of the module docstring; one-line InputErrors."""
    size, dim, path = spec.input_size_px, spec.embedding_dim, spec.path
    layout = spec.layout.upper()
    try:
        with torch.no_grad():
            raw = model.network(torch.zeros(1, 3, size, size))
    except Exception as exc:  # noqa: BLE001 - any failure here means the input is wrong
        raise InputError(f"{path}: the network fails on one {size}x{size} px image in "
                         f"{layout} with 3 channels ({_forward_reason(exc)}); set input_size_px "
                         f"(and layout) to what the model expects") from None
    if not isinstance(raw, torch.Tensor):
        raise InputError(f"{path}: the network returns a {type(raw).__name__}, not one "
                         f"embedding tensor; export a model that returns only the embedding")
    if tuple(raw.shape) != (1, dim):
        got = (f"{raw.shape[1]} dimensions" if raw.ndim == 2 and raw.shape[0] == 1
               else f"shape {tuple(raw.shape)}")
        raise InputError(f"{path}: the embedding of one image has {got}; expected (1, "
                         f"embedding_dim = {dim}): set embedding_dim, or flatten the output "
                         f"inside the model")
    generator = torch.Generator().manual_seed(_CHECK_SEED)
    images = torch.rand(2, 3, size, size, generator=generator)
    with torch.no_grad():
        singles = torch.cat([model.embed(images[:1]), model.embed(images[1:])])
    if not bool(torch.isfinite(singles).all()):
        raise InputError(f"{path}: the network's embedding of random images is not finite; "
                         f"check the file and mean / std")
    if float((singles[0] - singles[1]).abs().max()) <= _SAME_EMBEDDING_ATOL:
        raise InputError(f"{path}: the embedding does not depend on the input image (two "
                         f"different images give the same embedding); export the graph from "
                         f"the image input to the embedding")
    try:
        with torch.no_grad():
            batch = model.embed(images)
    except Exception as exc:  # noqa: BLE001 - a fixed batch size fails here
        raise InputError(f"{path}: the network fails on a batch of 2 images "
                         f"({_forward_reason(exc)}); its batch size looks fixed: "
                         f"{_batch_fix(spec)}") from None
    if tuple(batch.shape) != (2, dim) or float(
            (batch - singles).abs().max()) > _BATCH_ATOL:
        raise InputError(f"{path}: a batch of 2 images does not give each image its own "
                         f"embedding (output {tuple(batch.shape)}); its batch size looks fixed: "
                         f"{_batch_fix(spec)}")
    no_grad = (f"{path}: the embedding is not differentiable w.r.t. the input image "
               f"(attribution methods need its gradient); export without .detach(), integer "
               f"casts or argmax between the image and the embedding")
    with torch.enable_grad():  # the caller may be loading under torch.no_grad()
        probe = images[:1].clone().requires_grad_(True)
        emb = model.embed(probe)
        if not emb.requires_grad:
            raise InputError(no_grad)
        score = (emb * singles[1:].detach()).sum()
        (grad,) = torch.autograd.grad(score, probe, allow_unused=True)
    if grad is None or not bool(torch.isfinite(grad).all()) or not bool(grad.abs().max() > 0):
        raise InputError(no_grad)


def _batch_fix(spec: ModelFileSpec) -> str:
    if spec.format == "onnx":
        from faceattr.models.onnx_import import REEXPORT_HINT

        return REEXPORT_HINT
    if spec.format == "torchscript":
        return ("trace it with a batch of 2 or more, or use torch.jit.script, so no batch "
                "size is baked in")
    return "the factory's module must accept any batch size"


def load_model_file(spec: ModelFileSpec) -> VerificationModel:
    """Load, wrap and check a model file; return it as a :class:`VerificationModel`.

    Parameters
    ----------
    spec : ModelFileSpec
        From :func:`read_model_file_spec`.

    Returns
    -------
    faceattr.models.base.VerificationModel
        ``network`` is a :class:`PixelAdapter` around the file's network, in eval mode, on the
        CPU; ``pixel_mean = 0`` and ``pixel_scale = 1`` (the adapter normalises);
        ``weights_sha256`` is the SHA-256 of the model file.

    Raises
    ------
    faceattr.errors.MissingFileError
        The file is not there.
    faceattr.errors.InputError
        One line naming the file and the fix: a SHA-256 different from the pin (both hashes
        named), a file that does not load in its format, an op onnx2torch cannot convert (op,
        node, domain, opset), a factory that cannot be imported, missing / unexpected
        ``state_dict`` keys, a wrong input size, an embedding of the wrong dimension, an
        embedding that does not depend on the image, a fixed batch size, no gradient.
    """
    path = spec.path
    if not path.is_file():
        raise MissingFileError(f"{path}: model file not found; put the {spec.format} file there "
                               f"or fix path in the protocol's [model] table (a relative path "
                               f"is resolved against the protocol's folder)")
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise InputError(f"{path}: SHA-256 is {digest}, but the protocol pins sha256 = "
                         f"{spec.sha256}; use the file the protocol was registered with, or "
                         f"update the pin (a changed model is a new study)")
    loaders = {"onnx": _load_onnx, "torchscript": _load_torchscript,
               "state_dict": _load_state_dict}
    network = loaders[spec.format](spec)
    adapter = PixelAdapter(network, channel_order=spec.channel_order, layout=spec.layout,
                           mean=spec.mean, std=spec.std).eval()
    model = VerificationModel(name=spec.name, network=adapter, input_size_px=spec.input_size_px,
                              pixel_mean=0.0, pixel_scale=1.0, weights_sha256=digest)
    _check_model(model, spec)
    return model
