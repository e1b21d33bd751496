"""A small Inception-ResNet CNN for the synthetic world, and its deterministic loader.

The synthetic CNN's stem (``conv1..conv3`` with BatchNorm and ReLU, stride 2 each: an 8x8 map)
followed by two Inception-ResNet blocks in the layout of facenet-pytorch's ``Block35``
(Szegedy et al. 2017): parallel branches ``branch0`` (1x1), ``branch1`` (1x1, 3x3) and
``branch2`` (1x1, 3x3, 3x3) whose concatenation is projected back by a 1x1 ``conv2d``, scaled and
added to the block input, then ReLU. ``block1``/``block2`` are the blocks (8x8); an average pool
(4x4) and a linear ``embedding`` give raw 128-D embeddings of (N, 3, 64, 64) images in [0, 1].

It exists so that the branch-attention CAM (:mod:`faceattr.attribution.attention_cam`), defined
for FaceNet's Inception-ResNet blocks, can be measured where the identity regions are known.

References
----------
C. Szegedy, S. Ioffe, V. Vanhoucke, A. A. Alemi, "Inception-v4, Inception-ResNet and the Impact
of Residual Connections on Learning", AAAI 2017.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from faceattr.errors import MissingFileError
from faceattr.models.base import VerificationModel, load_checked_state_dict, read_state_dict

__all__ = ["INCEPTION_EMBEDDING_DIM", "SYNTHETIC_INCEPTION_WEIGHTS_ENV", "SyntheticInceptionNet",
           "inception_weights_path", "load_synthetic_inception"]

INCEPTION_EMBEDDING_DIM: int = 128
SYNTHETIC_INCEPTION_WEIGHTS_ENV: str = "FACEATTR_SYNTHETIC_INCEPTION_WEIGHTS"
"""Environment variable that overrides the shipped weights path."""

_INPUT_SIZE_PX = 64
_WIDTH = 96
_RESIDUAL_SCALE = 0.5
_REGENERATE = "python -m faceattr.models.train_synthetic_inception --seed 0 --out {path}"


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2,
                                   bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=False))


class InceptionResnetBlock(nn.Module):
    """A ``Block35``-style block: three branches, concatenation, 1x1 projection, residual, ReLU.

    Parameters
    ----------
    width : int
        Channels in and out.
    scale : float
        Multiplier of the projected branches before the residual sum (FaceNet uses 0.17).
    """

    def __init__(self, width: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = _conv(width, 32, 1)
        self.branch1 = nn.Sequential(_conv(width, 32, 1), _conv(32, 32, 3))
        self.branch2 = nn.Sequential(_conv(width, 32, 1), _conv(32, 48, 3), _conv(48, 64, 3))
        self.conv2d = nn.Conv2d(32 + 32 + 64, width, kernel_size=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to (N, width, h, w)."""
        mixed = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), dim=1)
        out: torch.Tensor = self.relu(self.conv2d(mixed) * self.scale + x)
        return out


class SyntheticInceptionNet(nn.Module):
    """Stem (3 strided convs) + two Inception-ResNet blocks at 8x8 + linear embedding (~420k)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv(3, 32, 3, stride=2)
        self.conv2 = _conv(32, 64, 3, stride=2)
        self.conv3 = _conv(64, _WIDTH, 3, stride=2)
        self.block1 = InceptionResnetBlock(_WIDTH, _RESIDUAL_SCALE)
        self.block2 = InceptionResnetBlock(_WIDTH, _RESIDUAL_SCALE)
        self.pool = nn.AvgPool2d(kernel_size=2)
        self.flatten = nn.Flatten()
        self.embedding = nn.Linear(_WIDTH * 4 * 4, INCEPTION_EMBEDDING_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map preprocessed images (N, 3, 64, 64) to raw embeddings (N, 128)."""
        x = self.block2(self.block1(self.conv3(self.conv2(self.conv1(x)))))
        out: torch.Tensor = self.embedding(self.flatten(self.pool(x)))
        return out


def inception_weights_path() -> Path:
    """The weights path: ``$FACEATTR_SYNTHETIC_INCEPTION_WEIGHTS`` or the shipped file."""
    override = os.environ.get(SYNTHETIC_INCEPTION_WEIGHTS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "assets" / "models" / "synthetic_inception.pt"


def load_synthetic_inception(weights_path: Path | None = None) -> VerificationModel:
    """Load the trained synthetic Inception-ResNet CNN (eval mode, CPU; no random draws).

    Parameters
    ----------
    weights_path : pathlib.Path or None
        A ``state_dict`` saved by :mod:`faceattr.models.train_synthetic_inception`; ``None``:
        :func:`inception_weights_path`.

    Returns
    -------
    VerificationModel
        ``name="synthetic_inception"``, ``input_size_px=64``, [0, 1] inputs.

    Raises
    ------
    faceattr.errors.MissingFileError
        If the file does not exist (the message names the regenerating command).
    faceattr.errors.InputError
        If the file is not a loadable ``SyntheticInceptionNet`` state_dict.
    """
    path = inception_weights_path() if weights_path is None else Path(weights_path)
    fix = "regenerate with: " + _REGENERATE.format(path=path)
    if not path.is_file():
        raise MissingFileError(f"synthetic Inception weights not found: {path}; {fix}")
    state = read_state_dict(path, what="synthetic Inception", fix=fix)
    with torch.device("meta"):
        network = SyntheticInceptionNet()
    network = network.to_empty(device="cpu")
    load_checked_state_dict(network, state, path, what="a SyntheticInceptionNet", fix=fix)
    network.eval()
    return VerificationModel(name="synthetic_inception", network=network,
                             input_size_px=_INPUT_SIZE_PX, pixel_mean=0.0, pixel_scale=255.0,
                             weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
