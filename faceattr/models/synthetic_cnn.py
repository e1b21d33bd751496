"""A tiny face-embedding CNN for the synthetic world, and its deterministic loader.

The network maps (N, 3, 64, 64) images in [0, 1] to raw 128-D embeddings; L2 normalisation is
done by :meth:`faceattr.models.base.VerificationModel.embed`. Layers are named for the methods
that address them: ``conv1..conv4`` (``conv4`` / ``act4`` give an 8x8 Grad-CAM map), ``bn1..bn4``,
``act1..act4`` (non-in-place ReLUs), ``pool`` and ``embedding``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from faceattr.errors import MissingFileError
from faceattr.models.base import VerificationModel, load_checked_state_dict, read_state_dict

__all__ = [
    "ASSETS_DIR",
    "EMBEDDING_DIM",
    "SYNTHETIC_WEIGHTS_ENV",
    "SyntheticFaceCNN",
    "default_weights_path",
    "load_synthetic_model",
    "packaged_weights",
]

EMBEDDING_DIM: int = 128
"""Dimension of the raw embedding."""

SYNTHETIC_WEIGHTS_ENV: str = "FACEATTR_SYNTHETIC_WEIGHTS"
"""Environment variable that overrides the default weights path."""

_INPUT_SIZE_PX = 64
_REGENERATE = "python -m faceattr.models.train_synthetic --seed 0 --out {path}"


class SyntheticFaceCNN(nn.Module):
    """Four conv layers (stride 2, 2, 2, 1) with BatchNorm and ReLU, then a linear embedding.

    Spatial sizes for a 64x64 input: conv1 32x32, conv2 16x16, conv3 8x8, conv4 8x8, pool 4x4.
    About 448k parameters.

    Parameters
    ----------
    embedding_dim : int
        Output dimension (default 128).
    """

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=False)
        self.conv3 = nn.Conv2d(64, 96, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(96)
        self.act3 = nn.ReLU(inplace=False)
        self.conv4 = nn.Conv2d(96, 128, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(128)
        self.act4 = nn.ReLU(inplace=False)
        self.pool = nn.AvgPool2d(kernel_size=2)
        self.flatten = nn.Flatten()
        self.embedding = nn.Linear(128 * 4 * 4, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map preprocessed images (N, 3, 64, 64) to raw embeddings (N, embedding_dim)."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.act3(self.bn3(self.conv3(x)))
        x = self.act4(self.bn4(self.conv4(x)))
        out: torch.Tensor = self.embedding(self.flatten(self.pool(x)))
        return out


ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
"""The synthetic CNNs shipped inside the package (provenance: ``fixtures/README.md``)."""


def packaged_weights(level: int = 0) -> Path:
    """The shipped weights of the synthetic world's difficulty ``level`` (0, 1 or 2)."""
    if level not in (0, 1, 2):
        raise ValueError(f"difficulty level {level} has no shipped model (0, 1 or 2)")
    return ASSETS_DIR / ("synthetic_cnn.pt" if level == 0 else f"synthetic_cnn_d{level}.pt")


def default_weights_path() -> Path:
    """Return the weights path: ``$FACEATTR_SYNTHETIC_WEIGHTS`` or the shipped level-0 model."""
    override = os.environ.get(SYNTHETIC_WEIGHTS_ENV)
    if override:
        return Path(override)
    return packaged_weights(0)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_synthetic_model(weights_path: Path | None = None) -> VerificationModel:
    """Load the trained synthetic CNN as a :class:`VerificationModel` (eval mode, CPU).

    The module is built on the meta device and materialised with ``to_empty``, so loading draws
    no random numbers; every parameter and buffer comes from the file.

    Parameters
    ----------
    weights_path : pathlib.Path or None
        A ``state_dict`` saved by :mod:`faceattr.models.train_synthetic`. ``None`` uses
        :func:`default_weights_path`.

    Returns
    -------
    VerificationModel
        ``name="synthetic_cnn"``, ``input_size_px=64``, ``pixel_mean=0``, ``pixel_scale=255``
        (the network sees [0, 1] images) and the SHA-256 of the weights file.

    Raises
    ------
    faceattr.errors.MissingFileError
        If the weights file does not exist (the message names the regenerating command).
    faceattr.errors.InputError
        If the file is not a loadable ``SyntheticFaceCNN`` state_dict (garbage, truncated, wrong
        keys or shapes); the message names the file and the regenerating command.
    """
    path = default_weights_path() if weights_path is None else Path(weights_path)
    fix = "regenerate with: " + _REGENERATE.format(path=path)
    if not path.is_file():
        raise MissingFileError(f"synthetic CNN weights not found: {path}; {fix}")
    state = read_state_dict(path, what="synthetic CNN", fix=fix)
    with torch.device("meta"):
        network = SyntheticFaceCNN()
    network = network.to_empty(device="cpu")
    load_checked_state_dict(network, state, path, what="a SyntheticFaceCNN", fix=fix)
    network.eval()
    return VerificationModel(name="synthetic_cnn", network=network, input_size_px=_INPUT_SIZE_PX,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256=_sha256_file(path))
