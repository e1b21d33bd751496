"""Run-folder integrity: one writer at a time, and every artefact hashed when written.

A run folder is written under an exclusive lock (:func:`run_lock`, ``filelock``); a second
writer gets a one-line :class:`~faceattr.errors.RunLockedError` naming the holder's PID. Each
stage that writes an artefact records its SHA-256 and size in ``provenance.json``
(:func:`record_artefacts`), and nothing is reused, reported or compared before
:func:`verify_artefacts` has checked every recorded file against its hash: a file edited after
the run is a one-line :class:`~faceattr.errors.IntegrityError` naming it.

``records.jsonl`` grows while a run is in progress: its entry is a checkpoint of the first
``bytes`` bytes, updated after every batch, so a resumed run keeps exactly the verified prefix
(:func:`verified_prefix`). ``provenance.json`` cannot hold its own hash; it is the ledger.

This module sits below the run, the report and compare (it imports only the standard
library, ``filelock`` and :mod:`faceattr.io`), so each of them verifies the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from faceattr.errors import InputError, IntegrityError, RunLockedError, UnsafeNameError
from faceattr.io import read_json, write_json

__all__ = [
    "LOCK_FILE",
    "PROVENANCE_FILE",
    "SAFE_NAME",
    "check_safe_name",
    "confined_path",
    "file_sha256",
    "record_artefacts",
    "record_new_files",
    "record_prefix",
    "recorded_artefacts",
    "run_lock",
    "verified_prefix",
    "verify_artefacts",
]

LOCK_FILE = ".faceattr.lock"
"""The lock file inside a run folder (held by ``filelock`` while the folder is written)."""
_OWNER_FILE = ".faceattr.lock.owner"
PROVENANCE_FILE = "provenance.json"
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
"""Names used in paths (protocol names, method ids, pair ids): letters, digits, ``._-``."""

_HELD: dict[Path, int] = {}
_HELD_GUARD = threading.Lock()
_LOCKS: dict[Path, FileLock] = {}
_CHUNK = 1 << 20


def check_safe_name(what: str, name: str) -> str:
    """Return ``name`` if it is non-empty, only ``[A-Za-z0-9._-]`` and not ``.``/``..``.

    Raises
    ------
    UnsafeNameError
        One line naming the offending value and what is allowed.
    """
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or set(name) == {"."}:
        raise UnsafeNameError(f"{what} {name!r} is not a safe name: use only letters, digits, "
                              "'.', '_' and '-' (it becomes part of a file path)")
    return name


def confined_path(base: Path, name: str) -> Path:
    """``base / name`` resolved, refused unless it lies inside ``base`` (path traversal)."""
    root = base.resolve()
    path = (root / name).resolve()
    if path == root or root not in path.parents:
        raise UnsafeNameError(f"run folder {name!r} would lie outside the reports directory "
                              f"{root}; use a plain protocol name")
    return path


def file_sha256(path: Path, n_bytes: int | None = None) -> str:
    """Hex SHA-256 of a file (or of its first ``n_bytes`` bytes)."""
    digest = hashlib.sha256()
    remaining = n_bytes
    with path.open("rb") as handle:
        while remaining is None or remaining > 0:
            block = handle.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


@contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the run folder's exclusive lock (re-entrant within one process).

    Raises
    ------
    RunLockedError
        Another process holds it; the message names its PID and host.
    """
    key = root.resolve()
    with _HELD_GUARD:
        if _HELD.get(key, 0) > 0:
            _HELD[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
        return
    key.mkdir(parents=True, exist_ok=True)
    lock = _LOCKS.setdefault(key, FileLock(str(key / LOCK_FILE), timeout=0))
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(f"{key} is being written by another faceattr process "
                             f"({_owner(key)}); wait for it to finish or stop it") from None
    owner = key / _OWNER_FILE
    owner.write_text(f"PID {os.getpid()} on {socket.gethostname()}\n", encoding="utf-8")
    with _HELD_GUARD:
        _HELD[key] = 1
    try:
        yield
    finally:
        with _HELD_GUARD:
            _HELD[key] = 0
        owner.unlink(missing_ok=True)
        lock.release()


def _owner(root: Path) -> str:
    try:
        return (root / _OWNER_FILE).read_text(encoding="utf-8").strip() or "PID unknown"
    except OSError:
        return "PID unknown"


def recorded_artefacts(root: Path) -> dict[str, dict[str, Any]]:
    """The artefact ledger of ``provenance.json`` (empty when the folder has none yet)."""
    path = root / PROVENANCE_FILE
    if not path.exists():
        return {}
    ledger = read_json(path).get("artefacts")
    if not isinstance(ledger, dict):
        raise IntegrityError(f"{path}: no artefact ledger; the folder was not written by this "
                             "faceattr version — re-run with --force-rerun")
    return ledger


def _write_ledger(root: Path, ledger: dict[str, dict[str, Any]]) -> None:
    path = root / PROVENANCE_FILE
    document = read_json(path)
    document["artefacts"] = dict(sorted(ledger.items()))
    write_json(path, document)


def record_artefacts(root: Path, *names: str) -> None:
    """Record the SHA-256 and size of each named file of ``root`` in its provenance."""
    ledger = recorded_artefacts(root)
    for name in names:
        path = root / name
        ledger[name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    _write_ledger(root, ledger)


def record_new_files(root: Path) -> list[str]:
    """Record every file of ``root`` (recursively) not yet in its ledger; return their names.

    Skips the ledger itself, the lock files, temporary files (names starting with ``.``) and
    the ``shards/`` folder (each shard keeps its own ledger).
    """
    ledger = recorded_artefacts(root)
    new = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in
                                            p.relative_to(root).parts)
                 and p.relative_to(root).parts[0] != "shards")
    new = [name for name in new if name != PROVENANCE_FILE and name not in ledger]
    if new:
        record_artefacts(root, *new)
    return new


def record_prefix(root: Path, name: str, sha256: str, n_bytes: int) -> None:
    """Record a checkpoint of a growing file: the hash of its first ``n_bytes`` bytes."""
    ledger = recorded_artefacts(root)
    ledger[name] = {"sha256": sha256, "bytes": n_bytes}
    _write_ledger(root, ledger)


def _edited(path: Path) -> IntegrityError:
    return IntegrityError(f"{path}: edited after the run (its SHA-256 differs from the one "
                          "recorded in provenance.json); re-run with --force-rerun or restore it")


def verified_prefix(root: Path, name: str) -> int:
    """Bytes of ``name`` covered by its checkpoint, after checking their hash (0 if none).

    A file longer than its checkpoint has an unrecorded tail (a run stopped mid-batch); the
    caller truncates it. A file shorter than its checkpoint, or whose prefix differs, was
    edited.
    """
    entry = recorded_artefacts(root).get(name)
    path = root / name
    if entry is None:
        return 0
    n_bytes = int(entry["bytes"])
    if not path.exists() or path.stat().st_size < n_bytes or \
            file_sha256(path, n_bytes) != entry["sha256"]:
        raise _edited(path)
    return n_bytes


def verify_artefacts(root: Path, *, required: tuple[str, ...] = (),
                     growing: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> None:
    """Check every file recorded in ``root``'s provenance against its hash and size.

    Parameters
    ----------
    root : Path
        The run folder.
    required : tuple of str
        Files that must be recorded (a run folder without a ledger entry for them was not
        written by this faceattr, or is incomplete).
    growing : tuple of str
        Files of a run in progress whose entry is a checkpoint of a prefix
        (:func:`verified_prefix`); only that prefix is checked.
    skip : tuple of str
        Recorded files about to be rewritten (the report before it is re-rendered).

    Raises
    ------
    IntegrityError
        One line naming the first file that is missing, unrecorded or edited.
    """
    if not (root / PROVENANCE_FILE).exists():
        raise InputError(f"{root}: no provenance.json; not a faceattr run folder (or one from "
                         "before artefact hashing) — re-run the protocol")
    ledger = recorded_artefacts(root)
    for name in required:
        if name not in ledger:
            raise IntegrityError(f"{root / name}: not recorded in provenance.json; the run is "
                                 "incomplete or was altered — re-run with --force-rerun")
    for name in growing:
        if name in ledger:
            verified_prefix(root, name)
    for name, entry in sorted(ledger.items()):
        if name in growing or name in skip:
            continue
        path = root / name
        if not path.is_file():
            raise IntegrityError(f"{path}: recorded in provenance.json but missing; restore it "
                                 "or re-run with --force-rerun")
        if path.stat().st_size != int(entry["bytes"]) or file_sha256(path) != entry["sha256"]:
            raise _edited(path)
