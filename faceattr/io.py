"""Atomic, strict file output: JSON never holds NaN, a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from faceattr.errors import InputError, MissingFileError

__all__ = [
    "append_jsonl_line",
    "atomic_write_bytes",
    "atomic_write_text",
    "dumps_strict",
    "read_json",
    "read_jsonl",
    "read_user_text",
    "write_json",
]


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


def read_user_text(path: Path, what: str, fix: str) -> str:
    """Read a user's UTF-8 text file (a protocol, a pairs list); every failure is one line.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        What the file is, e.g. ``"protocol file"``.
    fix : str
        What to do when it is missing, e.g. ``"see validation/protocols/"``.

    Raises
    ------
    MissingFileError
        The file does not exist (or is a folder).
    InputError
        It is not UTF-8 text, or it cannot be read.
    """
    if path.is_dir():
        raise MissingFileError(f"{path}: is a folder, not a {what}; {fix}")
    if not path.is_file():
        raise MissingFileError(f"{path}: {what} not found; {fix}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file (byte {exc.start}); save the {what} "
                         "as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or type(exc).__name__}); "
                         "check the path and its permissions") from None


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
