"""Atomic, strict file output: JSON never holds NaN, a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from faceattr.errors import InputError, MissingFileError

__all__ = ["append_jsonl_line", "atomic_write_bytes", "atomic_write_text", "dumps_strict",
           "read_json", "read_jsonl", "write_json"]


def dumps_strict(obj: Any, *, indent: int | None = None) -> str:
    """Serialise to JSON with ``allow_nan=False`` and sorted keys (byte-stable output)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(obj, allow_nan=False, sort_keys=True, indent=indent, separators=separators)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON, atomically."""
    atomic_write_text(path, dumps_strict(obj, indent=2) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing or corrupt file is a one-line
    :class:`~faceattr.errors.InputError` (:class:`~faceattr.errors.MissingFileError` if missing).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                         "delete it and re-run") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid JSON (not UTF-8 text); delete it and re-run") from None
    except OSError as exc:  # a folder in its place, no permission
        raise InputError(f"{path}: cannot read the JSON file ({exc.strerror or exc}); "
                         "fix or delete it and re-run") from None


def append_jsonl_line(path: Path, obj: Mapping[str, Any]) -> None:
    """Append one strict JSON line and flush it to disk (a crash loses at most this line)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(dumps_strict(obj) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read complete JSON lines; a torn final line (crash mid-write) is ignored.

    A corrupt complete line is a one-line :class:`~faceattr.errors.InputError`.
    """
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingFileError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: corrupt JSON lines (not UTF-8 text); delete it and re-run") \
            from None
    lines: Iterable[str] = text.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if not line.endswith("\n"):
            break  # torn tail from an interrupted append; resume rewrites it
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: corrupt JSON line ({exc.msg}); delete the file "
                             "and re-run") from None
    return rows
