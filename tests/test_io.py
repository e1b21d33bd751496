from __future__ import annotations

import math
from pathlib import Path

import pytest

from faceattr.io import append_jsonl_line, dumps_strict, read_json, read_jsonl, write_json


def test_nan_never_reaches_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json(tmp_path / "x.json", {"p_value": math.nan})
    assert not (tmp_path / "x.json").exists()


def test_dumps_is_byte_stable() -> None:
    assert dumps_strict({"b": 1, "a": [0.1, 2]}) == '{"a":[0.1,2],"b":1}'


def test_torn_jsonl_tail_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    append_jsonl_line(path, {"a": 1})
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"a": 2')  # a crash mid-append
    assert read_jsonl(path) == [{"a": 1}]


def test_corrupt_json_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"summary.json: not valid JSON .* delete it and re-run"):
        read_json(path)
