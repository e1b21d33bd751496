"""Rewrite a protocol's TOML text with the calibrated thresholds, keeping every comment.

tomllib reads TOML but cannot write it, and re-serialising a protocol would drop its comments
(the pre-registration's reasons). So the edit is textual and minimal: the values of
``tau_high``, ``tau_low`` and ``epsilon`` in ``[falsification]`` are replaced in place (their
comments kept), and the ``[calibration.result]`` block -- the only text faceattr owns, closed
by :data:`END_MARK` -- is written after the last ``[calibration...]`` table or replaced. The
result is parsed again and must equal the old document with exactly those values changed;
otherwise nothing is written.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from faceattr.errors import InputError

__all__ = ["END_MARK", "render_result", "rewrite_protocol_text", "toml_value"]

END_MARK = "# end of [calibration.result] (written by faceattr calibrate; do not edit)"
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]#]+?)\s*\]\]?\s*(#.*)?$")
_RESULT = "calibration.result"


def toml_value(value: Any) -> str:
    """One TOML value: bool, int, finite float (round-trip repr), string, flat inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite float: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (ASCII, escaped)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def render_result(result: Mapping[str, Any], comments: list[str]) -> list[str]:
    """The ``[calibration.result]`` block's lines (``methods`` as one inline table per id)."""
    lines = [f"[{_RESULT}]  # written by `faceattr calibrate`: the pre-registered thresholds"]
    lines += [f"# {c}" for c in comments]
    for key, value in result.items():
        if key == "methods":
            lines += [f"methods.{json.dumps(str(m))} = {toml_value(v)}" for m, v in value.items()]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    return [*lines, END_MARK]


def _name(line: str) -> str | None:
    match = _HEADER.match(line)
    return None if match is None else re.sub(r'[\s"]', "", match.group(1))


def _section(lines: list[str], name: str) -> tuple[int, int] | None:
    """``(header row, end row exclusive)`` of table ``name``, or None."""
    for row, line in enumerate(lines):
        if _name(line) == name:
            end = next((r for r in range(row + 1, len(lines)) if _name(lines[r]) is not None),
                       len(lines))
            return row, end
    return None


def _set_value(lines: list[str], where: str, key: str, value: float) -> None:
    bounds = _section(lines, "falsification")
    if bounds is None:
        raise InputError(f"{where}: no [falsification] table header to write {key} into")
    pattern = re.compile(rf"^(\s*{key}\s*=\s*)([^#]*?)(\s*(#.*)?)$")
    rows = [r for r in range(bounds[0] + 1, bounds[1]) if pattern.match(lines[r])]
    if len(rows) != 1:
        raise InputError(f"{where}: [falsification] must hold {key} = <number> on one line "
                         f"(found {len(rows)}) for faceattr calibrate to write it")
    lines[rows[0]] = pattern.sub(lambda m: f"{m.group(1)}{toml_value(value)}{m.group(3)}",
                                 lines[rows[0]])


def _result_rows(lines: list[str], where: str) -> tuple[int, int] | None:
    bounds = _section(lines, _RESULT)
    if bounds is None:
        return None
    end = next((r for r in range(bounds[0], bounds[1]) if lines[r].strip() == END_MARK), None)
    if end is None:
        raise InputError(f"{where}: [calibration.result] was edited by hand (its end mark is "
                         "gone); delete that table and run faceattr calibrate again")
    return bounds[0], end + 1


def _insert_row(lines: list[str], where: str) -> int:
    """After the last ``[calibration...]`` table's last key (its trailing comments and blank
    lines belong to the next table)."""
    ends = [b for n in {_name(line) for line in lines}
            if n is not None and (n == "calibration" or n.startswith("calibration."))
            and (b := _section(lines, n)) is not None]
    if not ends:
        raise InputError(f"{where}: no [calibration] table; declare the rule and the split, "
                         "e.g. [calibration] rule = \"genuine_angle_quantiles\" and "
                         "[calibration.data] first_identity = 2000")
    row = max(end for _, end in ends)
    while row > 0 and (not lines[row - 1].strip() or lines[row - 1].lstrip().startswith("#")):
        row -= 1
    return row


def rewrite_protocol_text(text: str, where: str, thresholds: Mapping[str, float],
                          result: Mapping[str, Any], comments: list[str]) -> str:
    """The protocol text with ``thresholds`` in ``[falsification]`` and ``result`` as
    ``[calibration.result]``; verified by parsing (everything else unchanged)."""
    before = tomllib.loads(text)
    lines = text.splitlines()
    for key, value in thresholds.items():
        _set_value(lines, where, key, value)
    block = render_result(result, comments)
    existing = _result_rows(lines, where)
    if existing is not None:
        lines[existing[0]:existing[1]] = block
    else:
        row = _insert_row(lines, where)
        lines[row:row] = ["", *block]
    new_text = "\n".join(lines) + "\n"
    expected = copy.deepcopy(before)
    expected["falsification"].update(thresholds)
    expected["calibration"]["result"] = copy.deepcopy(dict(result))
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: faceattr calibrate could not rewrite it safely ({exc}); "
                         "nothing was written") from None
    if parsed != expected:
        raise InputError(f"{where}: faceattr calibrate could not rewrite it safely (the "
                         "re-parsed file differs beyond the calibrated values); nothing was "
                         "written")
    return new_text
