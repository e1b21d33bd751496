"""Pairs over photos on disk: the shared photo loader and an identity-per-folder source.

Every photo source here gives images already aligned to a declared size (``alignment`` and
``size`` are constructor parameters, so a source's output matches one model's input), names
images by their path relative to the source's root, and hashes the *file bytes* for the pair
manifest (:meth:`PhotoSource.file_sha256`), so a manifest pins the exact files a run saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceattr.data.alignment import ALIGNMENTS, align_photo
from faceattr.data.images import DEFAULT_MIN_SIDE_PX, load_rgb_uint8
from faceattr.data.pairs import LoadedImage, Pair, content_pair_id
from faceattr.errors import InputError, MissingFileError
from faceattr.models.cache import sha256_file
from faceattr.rng import numpy_generator

__all__ = ["IMAGE_EXTENSIONS", "FolderPairSource", "PhotoSource", "check_manifest_files",
           "file_sha256_table"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class PhotoSource:
    """Base of the photo sources: root, alignment mode, output size and the image loader.

    Parameters
    ----------
    root : pathlib.Path
        Folder the image ids are relative to.
    alignment : {"center", "mtcnn", "dlib_chip"}
        How a photo becomes a model input (:func:`faceattr.data.alignment.align_photo`).
    size : int
        Output side in pixels: 150 for ``dlib_resnet``, 160 for FaceNet.
    min_side_px : int
        Smaller photos are refused.
    """

    root: Path
    alignment: str = "center"
    size: int = 160
    min_side_px: int = DEFAULT_MIN_SIDE_PX

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise InputError(f"unknown alignment {self.alignment!r}; known: "
                             f"{', '.join(ALIGNMENTS)}")
        if self.size < 8:
            raise InputError(f"size must be >= 8 px, got {self.size}")
        if not Path(self.root).is_dir():
            raise MissingFileError(f"image folder not found: {self.root}; point root at an "
                                   "existing folder")

    def image_path(self, image_id: str) -> Path:
        """Absolute path of an image id (a POSIX path relative to the root)."""
        if image_id.startswith("/") or ".." in Path(image_id).parts:
            raise InputError(f"image id must be a relative path inside the root: {image_id!r}")
        return Path(self.root) / image_id

    def file_sha256(self, image_id: str) -> str:
        """SHA-256 of the image file's bytes (what the pair manifest records)."""
        path = self.image_path(image_id)
        if not path.is_file():
            raise MissingFileError(f"image not found: {path}; restore it or point root at the "
                                   "complete image folder")
        return sha256_file(path)

    def landmarks(self, image_id: str) -> Sequence[Sequence[float]] | None:
        """Known dlib 5-point landmarks of an image, or ``None`` (MTCNN is used)."""
        return None

    def load_image(self, image_id: str) -> LoadedImage:
        """Load, check and align one photo: float32 (3, size, size) in [0, 1]."""
        path = self.image_path(image_id)
        rgb = load_rgb_uint8(path, min_side_px=self.min_side_px)
        image = align_photo(rgb, alignment=self.alignment, size=self.size,
                            landmarks_xy=self.landmarks(image_id), name=str(path))
        return LoadedImage(image=np.clip(image, 0.0, 1.0).astype(np.float32),
                           identity_mask=None)


def file_sha256_table(source: PhotoSource, pairs: Sequence[Pair]) -> dict[str, str]:
    """``{image_id: sha256 of the file}`` for every image of ``pairs`` (for the manifest)."""
    ids = sorted({p.image_a for p in pairs} | {p.image_b for p in pairs})
    return {image_id: source.file_sha256(image_id) for image_id in ids}


def check_manifest_files(source: PhotoSource, manifest_rows: Sequence[dict[str, object]]
                         ) -> None:
    """Refuse a manifest whose recorded file hashes differ from the files on disk.

    Raises
    ------
    faceattr.errors.InputError
        One line naming the first differing image and the number of differences.
    """
    seen: dict[str, str] = {}
    bad: list[str] = []
    for row in manifest_rows:
        for key, sha_key in (("image_a", "sha256_a"), ("image_b", "sha256_b")):
            image_id, recorded = str(row[key]), str(row[sha_key])
            if image_id not in seen:
                seen[image_id] = source.file_sha256(image_id)
            if seen[image_id] != recorded and image_id not in bad:
                bad.append(image_id)
    if bad:
        raise InputError(f"manifest does not match the files: {bad[0]} has sha256 "
                         f"{seen[bad[0]][:12]}... (manifest differs; {len(bad)} image(s) "
                         "changed); re-run on the same data or write a new manifest")


@dataclass(frozen=True)
class FolderPairSource(PhotoSource):
    """A dataset with one folder per identity, and a seeded genuine/impostor pair sampler.

    ``root/<identity>/<image>``; identities are folder names, images are the files with an
    extension in :data:`IMAGE_EXTENSIONS`, sorted. ``round(n_pairs * genuine_fraction)`` genuine
    pairs (two distinct images of one identity with at least two) and the rest impostor pairs
    (two identities) are drawn without repetition from the stream
    ``(seed, "folder_pairs", name)``.

    Parameters
    ----------
    n_pairs : int
        Number of pairs.
    genuine_fraction : float
        Declared share of genuine pairs, a fraction in [0, 1].
    seed : int
        Sampler seed.
    name : str
        Source name (pair ids and the manifest).
    """

    n_pairs: int = 100
    genuine_fraction: float = 0.5
    seed: int = 0
    name: str = "folder"
    _images: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_pairs < 1 or not 0.0 <= self.genuine_fraction <= 1.0:
            raise InputError(f"need n_pairs >= 1 and genuine_fraction in [0, 1], got "
                             f"{self.n_pairs} and {self.genuine_fraction}")
        root = Path(self.root)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(f.relative_to(root).as_posix() for f in folder.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if files:
                self._images[folder.name] = files
        if len(self._images) < 2:
            raise InputError(f"{root}: need at least two identity folders with images, found "
                             f"{len(self._images)}; add images as <root>/<identity>/<image>")

    @property
    def identities(self) -> list[str]:
        """Identity names (folder names) that hold at least one image."""
        return list(self._images)

    def pairs(self) -> list[Pair]:
        """Sample the pairs: genuine ones first, then impostors (deterministic given the seed)."""
        rng = numpy_generator(self.seed, "folder_pairs", self.name)
        n_genuine = round(self.n_pairs * self.genuine_fraction)
        n_impostor = self.n_pairs - n_genuine
        genuine_pool = [(a, b) for ident, files in self._images.items()
                        for i, a in enumerate(files) for b in files[i + 1:]]
        identities = self.identities
        n_impostor_max = sum(len(self._images[ia]) * len(self._images[ib])
                             for i, ia in enumerate(identities) for ib in identities[i + 1:])
        if n_genuine > len(genuine_pool) or n_impostor > n_impostor_max:
            raise InputError(f"{self.root}: asked for {n_genuine} genuine and {n_impostor} "
                             f"impostor pairs, the folder allows {len(genuine_pool)} and "
                             f"{n_impostor_max}")
        chosen = [genuine_pool[i] for i in rng.choice(len(genuine_pool), n_genuine,
                                                      replace=False)] if n_genuine else []
        # impostors by rejection (the full impostor list is quadratic in the dataset size)
        impostors: dict[tuple[str, str], None] = {}
        while len(impostors) < n_impostor:
            ia, ib = sorted(int(i) for i in rng.choice(len(identities), 2, replace=False))
            files_a, files_b = self._images[identities[ia]], self._images[identities[ib]]
            impostors.setdefault((files_a[int(rng.integers(len(files_a)))],
                                  files_b[int(rng.integers(len(files_b)))]), None)
        chosen += list(impostors)
        out: list[Pair] = []
        for a, b in chosen:
            ident_a, ident_b = a.split("/", 1)[0], b.split("/", 1)[0]
            out.append(Pair(pair_id=content_pair_id(self.name, a, b), image_a=a, image_b=b,
                            identity_a=ident_a, identity_b=ident_b,
                            is_genuine=ident_a == ident_b))
        return out
