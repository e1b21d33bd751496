"""The demo photos: face_recognition 1.3.0's test images, fetched from PyPI and verified.

Seven photos ship in the ``face_recognition==1.3.0`` sdist (MIT; official White House photos):
four independent ones (``obama.jpg``, ``obama2.jpg``, ``obama3.jpg``, ``biden.jpg``), plus
``32bit.png`` (``obama2.jpg`` re-saved) and two crops of ``obama.jpg``. They are never committed:
:func:`fetch_demo_photos` downloads the sdist (~3 MB), checks its SHA-256 and each photo's, and
extracts them into the user cache. The reference numbers (dlib 20.0.1's 5-point landmarks and
descriptors, ``shared/data/demo_photos_dlib_reference.json``, copied to ``fixtures/dlib/``) let
faceattr cut dlib-style chips without dlib (King 2009).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from faceattr.data.folder_pairs import PhotoSource
from faceattr.data.pairs import Pair, content_pair_id
from faceattr.models.cache import (
    FACE_RECOGNITION_SDIST,
    cache_dir,
    fetch_archive_members,
    sha256_file,
)

__all__ = ["DEMO_PHOTOS", "INDEPENDENT_PHOTOS", "DemoPhotoPairSource", "demo_photos_dir",
           "fetch_demo_photos"]


class _DemoPhoto(NamedTuple):
    sha256: str
    identity: str
    independent: bool
    dlib_landmarks_xy: tuple[tuple[int, int], ...]


DEMO_PHOTOS: dict[str, _DemoPhoto] = {
    '32bit.png': _DemoPhoto(
        '44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627',
        'obama', False,
                 ((397, 387), (346, 383), (230, 372), (276, 377), (289, 471))),
    'biden.jpg': _DemoPhoto(
        '3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c', 'biden', True,
                 ((672, 356), (627, 347), (510, 320), (556, 331), (582, 428))),
    'obama.jpg': _DemoPhoto(
        '0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6', 'obama', True,
                 ((570, 216), (528, 215), (424, 217), (463, 216), (496, 295))),
    'obama2.jpg': _DemoPhoto(
        'a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6', 'obama', True,
                 ((398, 387), (347, 382), (231, 372), (276, 377), (290, 471))),
    'obama3.jpg': _DemoPhoto(
        '76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3', 'obama', True,
                 ((882, 409), (834, 398), (709, 390), (761, 390), (802, 467))),
    'obama_partial_face.jpg': _DemoPhoto(
        'c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117', 'obama', False,
                 ((153, 216), (111, 216), (11, 214), (48, 216), (71, 294))),
    'obama_partial_face2.jpg': _DemoPhoto(
        '9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028', 'obama', False,
                 ((548, 212), (516, 216), (422, 219), (461, 217), (501, 296))),
}
"""File name -> SHA-256, identity, independence and dlib's 5-point landmarks (x, y)."""

INDEPENDENT_PHOTOS: tuple[str, ...] = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
"""The independent photos (the others are re-saves or crops of these)."""

_ARCHIVE_DIR = "face_recognition-1.3.0/tests/test_images"


def demo_photos_dir() -> Path:
    """Where :func:`fetch_demo_photos` puts the photos (inside the user cache)."""
    return cache_dir() / "face_recognition-1.3.0" / "test_images"


def fetch_demo_photos() -> Path:
    """Return the demo photo folder, fetching the photos from PyPI on first use.

    When every photo is already there with its pinned SHA-256 nothing is downloaded. Otherwise
    the face_recognition 1.3.0 sdist is downloaded, verified, the verified photos are written
    atomically, and the sdist is deleted; concurrent callers share one download
    (:func:`faceattr.models.cache.fetch_archive_members`).

    Returns
    -------
    pathlib.Path
        :func:`demo_photos_dir`.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        PyPI is unreachable, the sdist's or a photo's SHA-256 differs from the pinned value, or
        the cache is not writable (one line naming the URL, the cache path and the fix).
    """
    folder = demo_photos_dir()
    fix = (f"put face_recognition 1.3.0's test photos ({', '.join(sorted(DEMO_PHOTOS))}, from "
           f"{_ARCHIVE_DIR}/ of its sdist) into {folder}")
    fetch_archive_members(
        FACE_RECOGNITION_SDIST,
        {f"{_ARCHIVE_DIR}/{name}": (photo.sha256, folder / name)
         for name, photo in DEMO_PHOTOS.items()},
        fix=fix)
    return folder


@dataclass(frozen=True)
class DemoPhotoPairSource(PhotoSource):
    """All pairs of the independent demo photos (3 genuine, 3 impostor).

    Parameters
    ----------
    root : pathlib.Path
        The photo folder (:func:`fetch_demo_photos`).
    alignment : {"dlib_chip", "mtcnn", "center"}
        ``dlib_chip`` (default) cuts dlib chips from dlib's reference landmarks (``size=150``
        for ``dlib_resnet``); ``mtcnn`` gives FaceNet's 160 px MTCNN crops.
    include_dependent : bool
        Also pair the re-saved and cropped photos (not independent evidence).
    name : str
        Source name.
    """

    alignment: str = "dlib_chip"
    size: int = 150
    include_dependent: bool = False
    name: str = "demo_photos"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self._photos():
            expected = DEMO_PHOTOS[name].sha256
            path = Path(self.root) / name
            if not path.is_file():
                raise FileNotFoundError(f"demo photo missing: {path}; run `faceattr fetch-demo`")
            if sha256_file(path) != expected:
                raise ValueError(f"demo photo {path} has another sha256 than face_recognition "
                                 "1.3.0's; delete it and run `faceattr fetch-demo`")

    def _photos(self) -> list[str]:
        return list(DEMO_PHOTOS) if self.include_dependent else list(INDEPENDENT_PHOTOS)

    def landmarks(self, image_id: str) -> Sequence[Sequence[float]] | None:
        """dlib's reference 5-point landmarks of a demo photo."""
        return DEMO_PHOTOS[image_id].dlib_landmarks_xy

    def pairs(self) -> list[Pair]:
        """Every unordered pair of the photos, in a fixed order."""
        out: list[Pair] = []
        for a, b in itertools.combinations(self._photos(), 2):
            ident_a, ident_b = DEMO_PHOTOS[a].identity, DEMO_PHOTOS[b].identity
            out.append(Pair(pair_id=content_pair_id(self.name, a, b), image_a=a, image_b=b,
                            identity_a=ident_a, identity_b=ident_b,
                            is_genuine=ident_a == ident_b))
        return out
