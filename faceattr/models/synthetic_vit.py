"""A tiny Vision Transformer for the synthetic world, and its deterministic loader.

A different architecture from :class:`~faceattr.models.synthetic_cnn.SyntheticFaceCNN` trained on
the same world with the same recipe (:mod:`faceattr.models.train_synthetic_vit`), so the maps of
one explanation method can be compared across architectures on the same pairs, and methods native
to attention (rollout, :mod:`faceattr.attribution.rollout`) have a model to explain.

The network maps (N, 3, 64, 64) images in [0, 1] to raw 128-D embeddings; L2 normalisation is
done by :meth:`faceattr.models.base.VerificationModel.embed`. Layout (ViT-style, pre-norm):
``patch_embed`` (8x8 patches, stride 8: an 8x8 token grid), a learned ``cls_token`` and
``pos_embed``, ``blocks.0 .. blocks.3`` (each ``norm1``, ``attn`` with ``attn.qkv``,
``attn.softmax`` and ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.act``, ``mlp.fc2``), ``norm``,
``embedding`` (read from the class token) and ``embedding_bn``, a BatchNorm of the embedding as
FaceNet's ``last_bn`` (without it every image starts with nearly the same embedding, angles
~0.06 rad apart, and the CosFace loss stays at chance: measured, see fixtures/README.md).

Every attention module is a :class:`SelfAttention` whose ``softmax`` submodule outputs the
attention probabilities (N, heads, T, T), ``T = 1 + 64``: rollout reads them with forward hooks.

References
----------
A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from faceattr.errors import MissingFileError
from faceattr.models.base import VerificationModel, load_checked_state_dict, read_state_dict

__all__ = ["SYNTHETIC_VIT_WEIGHTS_ENV", "VIT_EMBEDDING_DIM", "SelfAttention", "SyntheticFaceViT",
           "attention_modules", "init_vit_parameters", "load_synthetic_vit", "vit_weights_path"]

VIT_EMBEDDING_DIM: int = 128
"""Dimension of the raw embedding (as the CNN's)."""

SYNTHETIC_VIT_WEIGHTS_ENV: str = "FACEATTR_SYNTHETIC_VIT_WEIGHTS"
"""Environment variable that overrides the shipped weights path."""

_INPUT_SIZE_PX = 64
_PATCH_PX = 8
_WIDTH = 64
_DEPTH = 4
_HEADS = 4
_MLP_WIDTH = 128
_REGENERATE = "python -m faceattr.models.train_synthetic_vit --seed 0 --out {path}"


class SelfAttention(nn.Module):
    """Multi-head self-attention whose probabilities pass through a hookable ``softmax``.

    Parameters
    ----------
    width : int
        Token dimension.
    n_heads : int
        Number of heads (``width`` must be divisible by it).
    """

    def __init__(self, width: int, n_heads: int) -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.head_dim = width // n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(width, width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Attend over (N, T, width) tokens; the attention is ``softmax`` output (N, h, T, T)."""
        n, t, width = tokens.shape
        qkv = self.qkv(tokens).reshape(n, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        attention = self.softmax(query @ key.transpose(-2, -1) * self.head_dim ** -0.5)
        mixed = (attention @ value).transpose(1, 2).reshape(n, t, width)
        out: torch.Tensor = self.proj(mixed)
        return out


class _MLP(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(self.act(self.fc1(tokens)))
        return out


class _Block(nn.Module):
    def __init__(self, width: int, n_heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, n_heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = _MLP(width, hidden)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attn(self.norm1(tokens))
        out: torch.Tensor = tokens + self.mlp(self.norm2(tokens))
        return out


class SyntheticFaceViT(nn.Module):
    """ViT with 8x8 patches, width 64, depth 4, 4 heads, MLP width 128 and a class token.

    About 160k parameters; embeds (N, 3, 64, 64) images to (N, 128) raw embeddings read from the
    class token after the final LayerNorm.
    """

    def __init__(self) -> None:
        super().__init__()
        n_patches = (_INPUT_SIZE_PX // _PATCH_PX) ** 2
        self.patch_embed = nn.Conv2d(3, _WIDTH, kernel_size=_PATCH_PX, stride=_PATCH_PX)
        self.cls_token = nn.Parameter(torch.empty(1, 1, _WIDTH))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + n_patches, _WIDTH))
        self.blocks = nn.ModuleList([_Block(_WIDTH, _HEADS, _MLP_WIDTH) for _ in range(_DEPTH)])
        self.norm = nn.LayerNorm(_WIDTH)
        self.embedding = nn.Linear(_WIDTH, VIT_EMBEDDING_DIM)
        self.embedding_bn = nn.BatchNorm1d(VIT_EMBEDDING_DIM)

    @property
    def grid_size(self) -> int:
        """Side of the token grid (8 for 64x64 inputs)."""
        return _INPUT_SIZE_PX // _PATCH_PX

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map preprocessed images (N, 3, 64, 64) to raw embeddings (N, 128)."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        out: torch.Tensor = self.embedding_bn(self.embedding(self.norm(tokens)[:, 0]))
        return out


def attention_modules(network: nn.Module) -> list[tuple[str, SelfAttention]]:
    """The network's :class:`SelfAttention` modules in declaration order, by name."""
    return [(name, module) for name, module in network.named_modules()
            if isinstance(module, SelfAttention)]


def init_vit_parameters(network: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter of a :class:`SyntheticFaceViT` from ``generator`` only.

    Linear layers and the patch projection get Xavier-uniform weights and zero biases, the class
    token and position embeddings truncated-normal values (std 0.02, as in ViT), LayerNorms and
    the BatchNorm unit scale and zero shift (the BatchNorm's running statistics reset).
    """
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                if isinstance(module, nn.BatchNorm1d):
                    module.reset_running_stats()
            if isinstance(module, SyntheticFaceViT):
                for token in (module.cls_token, module.pos_embed):
                    nn.init.trunc_normal_(token, std=0.02, a=-0.04, b=0.04, generator=generator)


def vit_weights_path() -> Path:
    """The weights path: ``$FACEATTR_SYNTHETIC_VIT_WEIGHTS`` or the shipped file."""
    override = os.environ.get(SYNTHETIC_VIT_WEIGHTS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "assets" / "models" / "synthetic_vit.pt"


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_synthetic_vit(weights_path: Path | None = None) -> VerificationModel:
    """Load the trained synthetic ViT as a :class:`VerificationModel` (eval mode, CPU).

    Built on the meta device and materialised with ``to_empty``: loading draws no random numbers.

    Parameters
    ----------
    weights_path : pathlib.Path or None
        A ``state_dict`` saved by :mod:`faceattr.models.train_synthetic_vit`; ``None`` uses
        :func:`vit_weights_path`.

    Returns
    -------
    VerificationModel
        ``name="synthetic_vit"``, ``input_size_px=64``, [0, 1] inputs, the weights' SHA-256.

    Raises
    ------
    faceattr.errors.MissingFileError
        If the file does not exist (the message names the regenerating command).
    faceattr.errors.InputError
        If the file is not a loadable ``SyntheticFaceViT`` state_dict.
    """
    path = vit_weights_path() if weights_path is None else Path(weights_path)
    fix = "regenerate with: " + _REGENERATE.format(path=path)
    if not path.is_file():
        raise MissingFileError(f"synthetic ViT weights not found: {path}; {fix}")
    state = read_state_dict(path, what="synthetic ViT", fix=fix)
    with torch.device("meta"):
        network = SyntheticFaceViT()
    network = network.to_empty(device="cpu")
    load_checked_state_dict(network, state, path, what="a SyntheticFaceViT", fix=fix)
    network.eval()
    return VerificationModel(name="synthetic_vit", network=network, input_size_px=_INPUT_SIZE_PX,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256=_sha256_file(path))
