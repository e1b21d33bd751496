"""Pairs, pair sources and the pair manifest (PITFALLS.md #15).

A pair source lists verification pairs and loads their images as float32 RGB in [0, 1],
(3, H, W), with the ground-truth identity mask where one exists. Every run writes a manifest:
a stable content-derived ``pair_id``, image ids, identities, label and the SHA-256 of each
image, so that two runs can be joined — or refused — on exactly the same pairs.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from faceattr.errors import InputError

__all__ = ["LimitedPairSource", "LoadedImage", "Pair", "PairSource", "build_manifest",
           "content_pair_id", "image_hashes", "manifest_sha256"]


@dataclass(frozen=True, slots=True)
class Pair:
    """A verification pair: probe ``image_a`` is explained, partner ``image_b`` held fixed."""

    pair_id: str
    image_a: str
    image_b: str
    identity_a: str
    identity_b: str
    is_genuine: bool

    def __post_init__(self) -> None:
        if self.is_genuine != (self.identity_a == self.identity_b):
            raise ValueError(f"pair {self.pair_id}: label is_genuine={self.is_genuine} contradicts "
                             f"identities {self.identity_a!r} / {self.identity_b!r}")


@dataclass(frozen=True, slots=True, eq=False)
class LoadedImage:
    """An image as float32 RGB in [0, 1], (3, H, W), with its identity mask (H, W) if known."""

    image: NDArray[np.float32]
    identity_mask: NDArray[np.bool_] | None

    def __post_init__(self) -> None:
        if self.image.dtype != np.float32 or self.image.ndim != 3 or self.image.shape[0] != 3:
            raise ValueError(f"an image must be float32 (3, H, W), got {self.image.dtype} "
                             f"{self.image.shape}")
        if not np.isfinite(self.image).all() or self.image.min() < 0 or self.image.max() > 1:
            raise ValueError("image values must be finite and in [0, 1]")
        if self.identity_mask is not None and self.identity_mask.shape != self.image.shape[1:]:
            raise ValueError("identity mask shape differs from the image's")

    def sha256(self) -> str:
        """SHA-256 of the image's float32 bytes (C order)."""
        return hashlib.sha256(np.ascontiguousarray(self.image).tobytes()).hexdigest()


class PairSource(Protocol):
    """What a data source provides to a run."""

    @property
    def name(self) -> str:
        """Source name (used in pair ids and the manifest)."""
        ...

    def pairs(self) -> list[Pair]:
        """Return the source's pairs in a deterministic order."""
        ...

    def load_image(self, image_id: str) -> LoadedImage:
        """Load one image by id."""
        ...


@dataclass(frozen=True, slots=True)
class LimitedPairSource:
    """The first ``n_pairs`` pairs of another source, in its order (e.g. LFW n = 500)."""

    inner: PairSource
    n_pairs: int

    @property
    def name(self) -> str:
        """The inner source's name."""
        return self.inner.name

    def pairs(self) -> list[Pair]:
        """The first ``n_pairs`` pairs; fewer available is an error."""
        pairs = self.inner.pairs()
        if len(pairs) < self.n_pairs:
            raise InputError(f"source {self.name!r} has {len(pairs)} pairs, fewer than the "
                             f"{self.n_pairs} the protocol asks for; lower [data] n_pairs")
        return pairs[:self.n_pairs]

    def load_image(self, image_id: str) -> LoadedImage:
        """Delegate to the inner source."""
        return self.inner.load_image(image_id)

    def file_sha256(self, image_id: str) -> str:
        """Delegate (photo sources hash files)."""
        method = getattr(self.inner, "file_sha256", None)
        if method is None:
            raise AttributeError(f"source {self.name!r} has no files to hash")
        digest: str = method(image_id)
        return digest


def image_hashes(source: PairSource, pairs: Sequence[Pair],
                 images: dict[str, LoadedImage]) -> dict[str, str]:
    """SHA-256 of every image of ``pairs``: of the file for photo sources (what is on disk),
    of the decoded float32 array for generated sources."""
    ids = sorted({p.image_a for p in pairs} | {p.image_b for p in pairs})
    file_hash = getattr(source, "file_sha256", None)
    if file_hash is not None and not (isinstance(source, LimitedPairSource)
                                      and getattr(source.inner, "file_sha256", None) is None):
        return {image_id: str(file_hash(image_id)) for image_id in ids}
    return {image_id: (images[image_id] if image_id in images
                       else source.load_image(image_id)).sha256() for image_id in ids}


def content_pair_id(source: str, image_a: str, image_b: str) -> str:
    """Stable pair id derived from the pair's content, e.g. ``"synthetic-3fa09c1b2d4e"``."""
    digest = hashlib.sha256(f"{source}|{image_a}|{image_b}".encode()).hexdigest()
    return f"{source}-{digest[:12]}"


def build_manifest(source: PairSource, pairs: Sequence[Pair],
                   image_sha256: dict[str, str]) -> dict[str, Any]:
    """Return the manifest dict (JSON-ready) of ``pairs`` with each image's SHA-256."""
    ids = [p.pair_id for p in pairs]
    if len(set(ids)) != len(ids):
        counts = Counter(ids)
        first = next(p for p in pairs if counts[p.pair_id] > 1)
        raise InputError(f"source {source.name!r} yields duplicate pair ids (first: "
                         f"{first.pair_id}, {first.image_a} / {first.image_b}); list each pair "
                         "once in the pairs file")
    rows = [{"pair_id": p.pair_id, "image_a": p.image_a, "image_b": p.image_b,
             "identity_a": p.identity_a, "identity_b": p.identity_b,
             "is_genuine": p.is_genuine, "sha256_a": image_sha256[p.image_a],
             "sha256_b": image_sha256[p.image_b]} for p in pairs]
    return {"source": source.name, "n_pairs": len(rows), "pairs": rows}


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON."""
    from faceattr.io import dumps_strict

    return hashlib.sha256(dumps_strict(manifest).encode()).hexdigest()
