"""FaceNet (facenet-pytorch's InceptionResnetV1) with its documented preprocessing, and MTCNN.

FaceNet (Schroff et al. 2015) as ported by facenet-pytorch 2.6.0: an Inception-ResNet-v1 that maps
a 160x160 MTCNN face crop (Zhang et al. 2016) to a 512-D embedding. Two weight sets exist,
trained on VGGFace2 (Cao et al. 2018) and on CASIA-WebFace (Yi et al. 2014). The network expects
``(x - 127.5) / 128`` with ``x`` in 0..255 (facenet-pytorch's ``fixed_image_standardization``);
feeding [0, 1] images instead is PITFALLS.md #16, so the standardisation lives in the
:class:`~faceattr.models.base.VerificationModel` wrapper (``pixel_mean=127.5, pixel_scale=128``).

Weights are never downloaded here (they live on GitHub, which these machines cannot reach): a
file is taken from the ``weights_path`` argument (CLI flag), ``$FACEATTR_FACENET_WEIGHTS``, or
torch's cache (``$TORCH_HOME/checkpoints``, where facenet-pytorch keeps its downloads), and is
loaded with ``torch.load(..., weights_only=True)``.

References
----------
F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet: A Unified Embedding for Face Recognition and
Clustering", CVPR 2015.
Q. Cao, L. Shen, W. Xie, O. M. Parkhi, A. Zisserman, "VGGFace2: A dataset for recognising faces
across pose and age", FG 2018.
D. Yi, Z. Lei, S. Liao, S. Z. Li, "Learning Face Representation from Scratch", arXiv:1411.7923,
2014 (CASIA-WebFace).
K. Zhang, Z. Zhang, Z. Li, Y. Qiao, "Joint Face Detection and Alignment Using Multitask Cascaded
Convolutional Networks", IEEE SPL 23(10), 2016.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.errors import InputError, MissingFileError
from faceattr.models._torchvision_shim import import_facenet_pytorch
from faceattr.models.base import VerificationModel, load_checked_state_dict, read_state_dict
from faceattr.models.cache import sha256_file
from faceattr.rng import torch_generator

__all__ = [
    "FACENET_INPUT_SIZE_PX",
    "FACENET_WEIGHTS_ENV",
    "FACENET_WEIGHT_FILES",
    "MtcnnFace",
    "build_inception_resnet_v1",
    "find_facenet_weights",
    "load_facenet",
    "mtcnn_detect",
    "random_facenet",
]

FACENET_INPUT_SIZE_PX: int = 160
FACENET_WEIGHTS_ENV: str = "FACEATTR_FACENET_WEIGHTS"
"""Environment variable naming a FaceNet ``state_dict`` file (overrides torch's cache)."""

FACENET_WEIGHT_FILES: dict[str, str] = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
"""facenet-pytorch's weight files (GitHub release v2.2.9) by weight set."""

_RELEASE_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
_PIXEL_MEAN = 127.5
_PIXEL_SCALE = 128.0


def build_inception_resnet_v1() -> nn.Module:
    """An InceptionResnetV1 embedder (no classifier head) built on the meta device.

    Returns a module whose tensors are uninitialised (``to_empty``): the caller loads a
    ``state_dict`` or initialises it explicitly, so no global random state is drawn.
    """
    facenet_pytorch = import_facenet_pytorch()
    with torch.device("meta"):
        network: nn.Module = facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False)
    return network.to_empty(device="cpu")


def _torch_home() -> Path:
    # facenet-pytorch's get_torch_home(): $TORCH_HOME or $XDG_CACHE_HOME/torch or ~/.cache/torch
    xdg = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(xdg, "torch"))))


def find_facenet_weights(weight_set: str, weights_path: Path | None = None) -> Path:
    """Locate a FaceNet weights file: argument, ``$FACEATTR_FACENET_WEIGHTS``, torch's cache.

    Raises
    ------
    faceattr.errors.InputError
        For an unknown weight set.
    faceattr.errors.MissingFileError
        One line naming the missing file and where to put it.
    """
    if weight_set not in FACENET_WEIGHT_FILES:
        raise InputError(f"unknown FaceNet weight set {weight_set!r}; known: "
                         f"{', '.join(FACENET_WEIGHT_FILES)}")
    filename = FACENET_WEIGHT_FILES[weight_set]
    if weights_path is not None:
        candidate, origin = Path(weights_path), "weights file"
    elif os.environ.get(FACENET_WEIGHTS_ENV):
        candidate, origin = Path(os.environ[FACENET_WEIGHTS_ENV]), FACENET_WEIGHTS_ENV
    else:
        candidate, origin = _torch_home() / "checkpoints" / filename, "torch cache"
    if not candidate.is_file():
        raise MissingFileError(
            f"FaceNet {weight_set} weights not found ({origin}: {candidate}); download "
            f"{_RELEASE_URL}{filename} and put it at {_torch_home() / 'checkpoints' / filename}, "
            f"or pass its path (--weights / {FACENET_WEIGHTS_ENV})")
    return candidate


def _model_name(weight_set: str) -> str:
    return "facenet_" + weight_set.replace("-", "_")


def load_facenet(weight_set: str = "vggface2", weights_path: Path | None = None
                 ) -> VerificationModel:
    """Load a pretrained FaceNet as a :class:`VerificationModel` (eval mode, CPU).

    Parameters
    ----------
    weight_set : {"vggface2", "casia-webface"}
        Which training set's weights (Cao et al. 2018; Yi et al. 2014).
    weights_path : pathlib.Path or None
        A facenet-pytorch ``state_dict``; ``None`` uses ``$FACEATTR_FACENET_WEIGHTS`` or torch's
        cache. The classifier head (``logits.*``) in the released files is dropped.

    Raises
    ------
    faceattr.errors.MissingFileError
        If the weights file is not found (see :func:`find_facenet_weights`).
    faceattr.errors.InputError
        If the file is not a loadable InceptionResnetV1 state_dict (one line naming the file and
        the release URL to re-download).

    Returns
    -------
    VerificationModel
        ``name="facenet_vggface2"`` or ``"facenet_casia_webface"``, 160 px,
        ``pixel_mean=127.5``, ``pixel_scale=128``; 512-D embeddings. Inputs are MTCNN crops
        (:func:`faceattr.data.images.prepare_photo` with ``alignment="mtcnn"``).
    """
    path = find_facenet_weights(weight_set, weights_path)
    fix = f"re-download {_RELEASE_URL}{FACENET_WEIGHT_FILES[weight_set]}"
    state = read_state_dict(path, what="FaceNet", fix=fix)
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    network = build_inception_resnet_v1()
    load_checked_state_dict(network, state, path, what="an InceptionResnetV1", fix=fix)
    network.eval()
    return VerificationModel(name=_model_name(weight_set), network=network,
                             input_size_px=FACENET_INPUT_SIZE_PX, pixel_mean=_PIXEL_MEAN,
                             pixel_scale=_PIXEL_SCALE, weights_sha256=sha256_file(path))


def random_facenet(seed: int, *, n_calibration: int = 128, batch_size: int = 32
                   ) -> VerificationModel:
    """A random-initialised FaceNet with re-estimated BatchNorm statistics (a test stand-in).

    With unfit BatchNorm statistics a random InceptionResnetV1 maps every input to nearly the
    same embedding (pairwise cosine ~0.99999); re-estimating the running means and variances on
    ``n_calibration`` random images spreads the embeddings (mean pairwise cosine ~0.2). It is
    not a face model: the model gate must refuse it.

    Parameters
    ----------
    seed : int
        Seed of the init stream ``(seed, "facenet_random", "init")`` and of the calibration
        images ``(seed, "facenet_random", "calibration")``.
    n_calibration : int
        Random images used to estimate the BatchNorm statistics.
    batch_size : int
        Calibration batch size (>= 2: the embedding BatchNorm1d needs two rows).
    """
    network = build_inception_resnet_v1()
    generator = torch_generator(seed, "facenet_random", "init")
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5.0), generator=generator)
                if module.bias is not None:
                    bound = 1.0 / math.sqrt(max(1, module.weight[0].numel()))
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration batches
    images_generator = torch_generator(seed, "facenet_random", "calibration")
    network.train()
    with torch.no_grad():
        for start in range(0, n_calibration, batch_size):
            n = min(batch_size, n_calibration - start)
            if n < 2:
                break
            images = torch.rand((n, 3, FACENET_INPUT_SIZE_PX, FACENET_INPUT_SIZE_PX),
                                generator=images_generator)
            network((images * 255.0 - _PIXEL_MEAN) / _PIXEL_SCALE)
    network.eval()
    digest = f"random-init-seed-{seed}-calibration-{n_calibration}"
    return VerificationModel(name="facenet_random", network=network,
                             input_size_px=FACENET_INPUT_SIZE_PX, pixel_mean=_PIXEL_MEAN,
                             pixel_scale=_PIXEL_SCALE,
                             weights_sha256=hashlib.sha256(digest.encode()).hexdigest())


@dataclass(frozen=True)
class MtcnnFace:
    """One MTCNN detection: box (x1, y1, x2, y2), probability, 5 landmarks (x, y)."""

    box_xyxy: NDArray[np.float64]
    probability: float
    landmarks_xy: NDArray[np.float64]


_MTCNN_CACHE: dict[str, Any] = {}


def _mtcnn() -> Any:
    if "mtcnn" not in _MTCNN_CACHE:
        facenet_pytorch = import_facenet_pytorch()
        _MTCNN_CACHE["mtcnn"] = facenet_pytorch.MTCNN(
            image_size=FACENET_INPUT_SIZE_PX, margin=0, post_process=False, select_largest=True,
            device="cpu")
    return _MTCNN_CACHE["mtcnn"]


def mtcnn_detect(rgb: NDArray[np.uint8]) -> list[MtcnnFace]:
    """Detect faces with facenet-pytorch's MTCNN (its bundled P/R/O-Net weights), largest first.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 (H, W, 3).

    Returns
    -------
    list of MtcnnFace
        Empty when no face is found.
    """
    from PIL import Image

    boxes, probs, points = _mtcnn().detect(Image.fromarray(rgb), landmarks=True)
    if boxes is None:
        return []
    faces = [MtcnnFace(box_xyxy=np.asarray(b, dtype=np.float64), probability=float(p),
                       landmarks_xy=np.asarray(pt, dtype=np.float64))
             for b, p, pt in zip(boxes, probs, points, strict=True)]
    return sorted(faces, key=lambda f: -float((f.box_xyxy[2] - f.box_xyxy[0])
                                              * (f.box_xyxy[3] - f.box_xyxy[1])))


def mtcnn_crop(rgb: NDArray[np.uint8], face: MtcnnFace, *, size: int = FACENET_INPUT_SIZE_PX,
               margin_px: int = 0) -> NDArray[np.float32]:
    """facenet-pytorch's ``extract_face``: the box (plus margin) resized to ``size``, [0, 1].

    Returns float32 (3, size, size) in [0, 1] (the model applies FaceNet's standardisation).
    """
    from PIL import Image

    facenet_pytorch = import_facenet_pytorch()
    face_tensor = facenet_pytorch.extract_face(Image.fromarray(rgb), face.box_xyxy,
                                               image_size=size, margin=margin_px)
    out: NDArray[np.float32] = np.clip(face_tensor.numpy().astype(np.float32) / 255.0, 0.0, 1.0)
    return out
