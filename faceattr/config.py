"""Strict reading of TOML tables: unknown keys, wrong types and out-of-range values are
one-line errors that name the key, the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from faceattr.errors import InputError

__all__ = ["ProtocolError", "RecordingReader", "TableReader"]


class ProtocolError(InputError):
    """A protocol file is invalid; the message names the key, the value and what is allowed."""


class _Missing:
    pass


_MISSING: Final = _Missing()


class TableReader:
    """Read typed values out of one TOML table, then refuse any key left unread.

    Parameters
    ----------
    table : Mapping
        The parsed TOML table.
    where : str
        Its location for messages, e.g. ``"synthetic.toml [falsification]"``.
    """

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        if not isinstance(table, Mapping):
            raise ProtocolError(f"{where}: expected a table, got {type(table).__name__}")
        self._table = table
        self._where = where
        self.where = where
        self._read: set[str] = set()

    def _get(self, key: str, default: object) -> object:
        self._read.add(key)
        if key in self._table:
            return self._table[key]
        if isinstance(default, _Missing):
            raise ProtocolError(f"{self._where}: missing required key {key!r}")
        return default

    def _fail(self, key: str, value: object, allowed: str) -> ProtocolError:
        return ProtocolError(f"{self._where}: {key} = {value!r} is not allowed; expected {allowed}")

    def text(self, key: str, *, default: str | _Missing = _MISSING,
             allowed: Sequence[str] | None = None) -> str:
        """Read a string, optionally from a closed set."""
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, value, "a string")
        if allowed is not None and value not in allowed:
            raise self._fail(key, value, "one of " + ", ".join(repr(a) for a in allowed))
        return value

    def integer(self, key: str, *, default: int | _Missing = _MISSING, minimum: int | None = None,
                maximum: int | None = None) -> int:
        """Read an integer within optional bounds."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, value, "an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self._fail(key, value, f"an integer in [{minimum}, {maximum}]")
        return value

    def number(self, key: str, *, default: float | _Missing = _MISSING,
               minimum: float | None = None, maximum: float | None = None) -> float:
        """Read a finite float within optional bounds."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, value, "a number")
        number = float(value)
        low = -math.inf if minimum is None else minimum
        high = math.inf if maximum is None else maximum
        if not math.isfinite(number) or not low <= number <= high:
            raise self._fail(key, value, f"a finite number in [{low}, {high}]")
        return number

    def fraction(self, key: str, *, default: float | _Missing = _MISSING,
                 open_low: bool = False, maximum: float = 1.0) -> float:
        """Read a fraction (never a percent) in [0, maximum] or (0, maximum]."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, value, "a fraction (a number)")
        number = float(value)
        low_ok = number > 0 if open_low else number >= 0
        if not math.isfinite(number) or not low_ok or number > maximum:
            bracket = "(" if open_low else "["
            hint = " — a fraction, not a percent" if number > 1 else ""
            raise self._fail(key, value, f"a fraction in {bracket}0, {maximum}]{hint}")
        return number

    def texts(self, key: str, *, default: list[str], allowed: Sequence[str] | None = None
              ) -> list[str]:
        """Read a list of strings, optionally from a closed set."""
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, value, "a list of strings")
        bad = [v for v in value if allowed is not None and v not in allowed]
        if bad:
            options = ", ".join(repr(a) for a in allowed or [])
            raise self._fail(key, value, f"strings from {options}")
        return value

    def integers(self, key: str, *, default: list[int], minimum: int, maximum: int
                 ) -> list[int]:
        """Read a list of integers within bounds."""
        value = self._get(key, default)
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= maximum
                for v in value):
            raise self._fail(key, value, f"a list of integers in [{minimum}, {maximum}]")
        return value

    def boolean(self, key: str, *, default: bool | _Missing = _MISSING) -> bool:
        """Read a boolean."""
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, value, "true or false")
        return value

    def table(self, key: str) -> Mapping[str, Any]:
        """Read a sub-table (required)."""
        value = self._get(key, _MISSING)
        if not isinstance(value, Mapping):
            raise self._fail(key, value, "a table")
        return value

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        """Read an array of tables (``[[key]]``); may be empty only if absent."""
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self._fail(key, value, "an array of tables ([[...]])")
        return value

    def finish(self) -> None:
        """Refuse any key that was not read."""
        unknown = sorted(set(self._table) - self._read)
        if unknown:
            allowed = ", ".join(sorted(self._read))
            raise ProtocolError(f"{self._where}: unknown key {unknown[0]!r}; "
                                f"allowed keys: {allowed}")


class RecordingReader(TableReader):
    """A reader that records what a parameter reader asks for instead of reading a table.

    Each typed getter records ``(key, kind, default, bounds or allowed values)`` in
    :attr:`keys` and returns a valid value (the default, else the first allowed value or the
    lower bound), so any reader function can be run to list the keys it accepts — the
    protocol reference is generated from the readers themselves, never written twice.
    """

    def __init__(self, where: str) -> None:
        super().__init__({}, where)
        self.keys: list[dict[str, Any]] = []

    def _note(self, key: str, kind: str, default: object, detail: str) -> None:
        shown = "required" if isinstance(default, _Missing) else repr(default)
        self.keys.append({"key": key, "type": kind, "default": shown, "allowed": detail})

    def text(self, key: str, *, default: str | _Missing = _MISSING,
             allowed: Sequence[str] | None = None) -> str:
        """Record a string key."""
        self._note(key, "string", default, "" if allowed is None else
                   "one of " + ", ".join(repr(a) for a in allowed))
        if not isinstance(default, _Missing):
            return default
        return allowed[0] if allowed else f"<{key}>"

    def integer(self, key: str, *, default: int | _Missing = _MISSING, minimum: int | None = None,
                maximum: int | None = None) -> int:
        """Record an integer key."""
        self._note(key, "integer", default, _bounds(minimum, maximum))
        return default if not isinstance(default, _Missing) else (minimum or 0)

    def number(self, key: str, *, default: float | _Missing = _MISSING,
               minimum: float | None = None, maximum: float | None = None) -> float:
        """Record a number key."""
        self._note(key, "number", default, _bounds(minimum, maximum))
        return float(default) if not isinstance(default, _Missing) else float(minimum or 0.0)

    def fraction(self, key: str, *, default: float | _Missing = _MISSING,
                 open_low: bool = False, maximum: float = 1.0) -> float:
        """Record a fraction key."""
        self._note(key, "fraction", default, f"{'(' if open_low else '['}0, {maximum}]")
        return float(default) if not isinstance(default, _Missing) else maximum / 2

    def texts(self, key: str, *, default: list[str], allowed: Sequence[str] | None = None
              ) -> list[str]:
        """Record a list-of-strings key."""
        self._note(key, "list of strings", default, "" if allowed is None else
                   "from " + ", ".join(repr(a) for a in allowed))
        return list(default)

    def integers(self, key: str, *, default: list[int], minimum: int, maximum: int
                 ) -> list[int]:
        """Record a list-of-integers key."""
        self._note(key, "list of integers", default, _bounds(minimum, maximum))
        return list(default)

    def boolean(self, key: str, *, default: bool | _Missing = _MISSING) -> bool:
        """Record a boolean key."""
        self._note(key, "boolean", default, "true or false")
        return default if not isinstance(default, _Missing) else False

    def table(self, key: str) -> Mapping[str, Any]:
        """Record a sub-table key (an empty table is returned)."""
        self._note(key, "table", _MISSING, "")
        return {}

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        """Record an array-of-tables key (none is returned)."""
        self._note(key, "array of tables", [], "")
        return []

    def finish(self) -> None:
        """Nothing to refuse: no table was read."""


def _bounds(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
