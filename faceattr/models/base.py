"""The verification-model interface every downstream stage uses (one code path).

A verification model owns its preprocessing: callers hand it images as float32 RGB in
[0, 1], shape (N, 3, H, W) at the model's ``input_size_px``, and get L2-normalised
embeddings. Nothing downstream ever re-implements a model's normalisation (PITFALLS.md #16).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from faceattr.errors import InputError

__all__ = ["VerificationModel", "embed_batched", "geodesic_distance_rad", "load_checked_state_dict",
           "read_state_dict", "verification_score"]

_REASON_CHARS = 100


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception's message, shortened (for one-line errors)."""
    if isinstance(exc, pickle.UnpicklingError):
        # torch's message is a multi-line essay suggesting weights_only=False: never that here
        return "UnpicklingError: refused by the weights-only loader"
    text = " ".join(str(exc).split())
    first = text.split(". ")[0].rstrip(".")
    if len(first) > _REASON_CHARS:
        first = first[:_REASON_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_state_dict(path: Path, *, what: str, fix: str) -> dict[str, torch.Tensor]:
    """Read a ``state_dict`` file with ``torch.load(..., weights_only=True)`` onto the CPU.

    Parameters
    ----------
    path : pathlib.Path
        The weights file (the caller has checked that it exists).
    what : str
        The model, for messages (e.g. ``"FaceNet"``).
    fix : str
        What the user should do about a bad file (e.g. ``"re-download <url>"``).

    Raises
    ------
    faceattr.errors.InputError
        One line naming the file and ``fix`` if the file cannot be unpickled (garbage, truncated,
        not a weights-only file, unreadable) or does not hold a ``{name: tensor}`` mapping.
    """
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - whatever torch raises, the user's file is at fault
        raise InputError(f"{path}: not a loadable {what} state_dict (corrupt, truncated or not "
                         f"a torch weights file: {_reason(exc)}); {fix}") from None
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InputError(f"{path}: not a loadable {what} state_dict (it holds a "
                         f"{type(state).__name__}, not a mapping of names to tensors); {fix}")
    return dict(state)


def _first(names: list[str]) -> str:
    return f"{len(names)}, first {names[0]!r}"


def load_checked_state_dict(network: nn.Module, state: Mapping[str, torch.Tensor], path: Path,
                            *, what: str, fix: str) -> None:
    """``network.load_state_dict(state, strict=True)``, with a one-line error for a wrong file.

    ``what`` names the architecture with its article (``"an InceptionResnetV1"``); ``fix`` is as
    in :func:`read_state_dict`.

    Raises
    ------
    faceattr.errors.InputError
        One line naming the file, the missing / unexpected / wrongly shaped entries (counts and
        the first of each) and ``fix``.
    """
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    if reshaped:
        key = reshaped[0]
        problems.append(f"wrong shapes: {_first(reshaped)} is {tuple(state[key].shape)}, "
                        f"expected {tuple(expected[key].shape)}")
    if not problems:
        try:
            network.load_state_dict(state, strict=True)
            return
        except RuntimeError as exc:
            problems.append(" ".join(str(exc).split())[:_REASON_CHARS])
    raise InputError(f"{path}: not {what} state_dict ({'; '.join(problems)}); {fix}")


@dataclass(frozen=True, eq=False)
class VerificationModel:
    """A face-verification embedder with its preprocessing.

    Parameters
    ----------
    name : str
        Stable model id used in records and stream keys (e.g. ``"synthetic_cnn"``).
    network : torch.nn.Module
        Maps *preprocessed* images (N, 3, H, W) to raw embeddings (N, D). Kept in eval mode.
    input_size_px : int
        Square input side the network expects, in pixels.
    pixel_mean, pixel_scale : float
        Preprocessing ``(x_unit * 255 - pixel_mean) / pixel_scale`` for FaceNet-style models;
        ``pixel_mean=0, pixel_scale=255`` leaves [0, 1] inputs unchanged.
    weights_sha256 : str
        SHA-256 of the weights file the network was loaded from (provenance).
    """

    name: str
    network: nn.Module
    input_size_px: int
    pixel_mean: float
    pixel_scale: float
    weights_sha256: str

    def preprocess(self, images_unit: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, H, W) float RGB in [0, 1] to the network's input scale."""
        expected = (3, self.input_size_px, self.input_size_px)
        if images_unit.ndim != 4 or tuple(images_unit.shape[1:]) != expected:
            raise ValueError(f"model {self.name!r} expects images of shape (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {tuple(images_unit.shape)}")
        return (images_unit * 255.0 - self.pixel_mean) / self.pixel_scale

    @property
    def device(self) -> torch.device:
        """Where the network's parameters live: CPU, unless a caller moved the network (the
        benchmark's ``--device``); tested numbers are computed on CPU."""
        for parameter in self.network.parameters():
            return parameter.device
        return torch.device("cpu")

    def embed(self, images_unit: torch.Tensor) -> torch.Tensor:
        """Return L2-normalised embeddings (N, D) of images in [0, 1] (differentiable), on the
        images' device (the forward runs on the network's; a no-op move on CPU)."""
        raw = self.network(self.preprocess(images_unit.to(self.device)))
        return nn.functional.normalize(raw, p=2.0, dim=1).to(images_unit.device)

    def named_layers(self) -> dict[str, nn.Module]:
        """Return the network's named submodules (for layer methods and randomisation)."""
        return dict(self.network.named_modules())


def verification_score(emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
    """Cosine verification score ``s = <f(x_a), f(x_b)>`` of L2-normalised embeddings, (N,)."""
    return (emb_a * emb_b).sum(dim=1)


def geodesic_distance_rad(emb_u: torch.Tensor, emb_v: torch.Tensor) -> torch.Tensor:
    """Geodesic distance ``arccos(clip(<u, v>, -1, 1))`` in radians, (N,)."""
    return torch.arccos(torch.clamp((emb_u * emb_v).sum(dim=1), -1.0, 1.0))


def embed_batched(model: VerificationModel, images_unit: torch.Tensor, *,
                  chunk_size: int) -> torch.Tensor:
    """Embed many images in inference mode, in chunks of exactly ``chunk_size`` rows.

    The last chunk is zero-padded to ``chunk_size`` so every forward has the same shape: on
    CPU a kernel's blocking can depend on the batch size (a batch of 1 gives different last
    bits than a batch of 64), and fixed shapes make each row's embedding independent of how
    the caller grouped the work — records stay byte-identical across batch sizes and shards.

    Parameters
    ----------
    model : VerificationModel
    images_unit : torch.Tensor
        (M, 3, H, W) float32 in [0, 1].
    chunk_size : int
        Rows per forward pass.

    Returns
    -------
    torch.Tensor
        (M, D) L2-normalised float32 embeddings.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    outputs: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, images_unit.shape[0], chunk_size):
            chunk = images_unit[start:start + chunk_size]
            n_rows = chunk.shape[0]
            if n_rows < chunk_size:
                pad = chunk.new_zeros((chunk_size - n_rows, *chunk.shape[1:]))
                chunk = torch.cat([chunk, pad])
            outputs.append(model.embed(chunk)[:n_rows])
    if not outputs:
        raise ValueError("no images to embed")
    return torch.cat(outputs)
