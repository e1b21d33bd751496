"""Run identity: everything that can change a result, hashed into the run folder's name.

A run folder ``<protocol name>-<first 12 hex of the identity hash>`` is reused or resumed only
when every component below is unchanged; any difference gives a new folder (never a silent
reuse, never a resume that mixes old and new records):

- the protocol's canonical scientific content (``protocol_sha256``);
- faceattr's version and the SHA-256 of its source tree (every ``.py``, template and schema of
  the installed package: an edited checkout is another faceattr);
- the model weights' SHA-256;
- the manifest's SHA-256 (every image's hash, so a changed photo is another data set);
- the versions of the libraries the numbers depend on;
- the device and dtype.

The git commit and its dirty flag are recorded beside the identity for the reader; they are not
part of the hash (the source-tree hash already is the code, and two clones of one commit are
one faceattr).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from faceattr.io import dumps_strict, read_json

__all__ = ["IDENTITY_FILE", "IDENTITY_PACKAGES", "RunIdentity", "git_state", "identity_diff",
           "previous_runs", "source_tree_sha256"]

IDENTITY_FILE = "identity.json"
#: Libraries whose versions are part of a run's identity (the numbers depend on them).
IDENTITY_PACKAGES = ("faceattr", "torch", "captum", "numpy", "scipy", "statsmodels", "zennit")
_SOURCE_SUFFIXES = (".py", ".j2", ".json", ".toml")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _hash_tree(root: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _SOURCE_SUFFIXES
                   and "__pycache__" not in p.parts)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def _package_tree_sha256() -> str:
    return _hash_tree(_PACKAGE_ROOT)


def source_tree_sha256(root: Path | None = None) -> str:
    """SHA-256 over the relative paths and contents of a source tree's code files.

    ``root=None`` hashes the installed ``faceattr`` package (once per process).
    """
    return _package_tree_sha256() if root is None else _hash_tree(root)


def git_state(directory: Path = _PACKAGE_ROOT) -> tuple[str, bool | None]:
    """HEAD commit of the checkout holding ``directory`` and whether it has local changes
    (``("unknown", None)`` outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "."], cwd=directory, capture_output=True, text=True,
                               check=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return head, dirty


def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for name in IDENTITY_PACKAGES:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """What a run's results depend on; :attr:`sha256` names the run folder."""

    protocol_sha256: str
    source_sha256: str
    weights_sha256: str
    manifest_sha256: str
    packages: tuple[tuple[str, str], ...]
    device: str
    dtype: str

    @classmethod
    def current(cls, *, protocol_sha256: str, weights_sha256: str, manifest_sha256: str,
                device: str = "cpu", dtype: str = "float32") -> RunIdentity:
        """The identity of a run of this code, with these libraries, on this device."""
        return cls(protocol_sha256=protocol_sha256, source_sha256=source_tree_sha256(),
                   weights_sha256=weights_sha256, manifest_sha256=manifest_sha256,
                   packages=_versions(), device=device, dtype=dtype)

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of every component."""
        return hashlib.sha256(dumps_strict(self.to_json()).encode()).hexdigest()

    def folder_name(self, protocol_name: str) -> str:
        """``<protocol name>-<first 12 hex of the identity hash>``."""
        return f"{protocol_name}-{self.sha256[:12]}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (packages as a mapping)."""
        row = asdict(self)
        row["packages"] = dict(self.packages)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> RunIdentity:
        """Rebuild from :meth:`to_json` (exact keys)."""
        expected = {f.name for f in fields(cls)}
        if set(row) != expected:
            raise ValueError(f"identity keys {sorted(row)} != {sorted(expected)}")
        values = dict(row)
        values["packages"] = tuple(sorted(dict(row["packages"]).items()))
        return cls(**values)


def identity_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences between two identity documents (``key: a -> b``)."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)  # a key on one side only is itself a difference
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{key}.{d}" for d in identity_diff(va, vb)]
        elif va != vb:
            out.append(f"{key}: {json.dumps(va)} -> {json.dumps(vb)}")
    return out


def previous_runs(reports_dir: Path, protocol_name: str, exclude: str) -> list[Path]:
    """Other run folders of the same protocol name, newest first (by identity file time)."""
    if not reports_dir.is_dir():
        return []
    found = [p for p in reports_dir.glob(f"{protocol_name}-*")
             if p.name != exclude and (p / IDENTITY_FILE).is_file()
             and p.name[len(protocol_name) + 1:].isalnum()]
    return sorted(found, key=lambda p: (p / IDENTITY_FILE).stat().st_mtime, reverse=True)


def read_identity(root: Path) -> dict[str, Any]:
    """The identity document of a run folder."""
    document: dict[str, Any] = read_json(root / IDENTITY_FILE)
    return document
