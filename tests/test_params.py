# Parameters declared once (faceattr.params): the protocol reader, the run-hash normalisation and
# the protocol reference all come from one frozen dataclass per component.
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Literal

import pytest

from faceattr.attribution.base import AttributionMethod
from faceattr.attribution.registry import METHODS
from faceattr.config import ProtocolError, RecordingReader, TableReader
from faceattr.params import NoParams, normalised, param, read_params, reference


@dataclass(frozen=True, kw_only=True)
class _Mixin:
    sigma_px: float = param(4.0, minimum=0.1, maximum=64.0, unit="px", doc="blur width")


@dataclass(frozen=True, kw_only=True)
class _Example(_Mixin):
    n_steps: int = param(32, minimum=1, maximum=4096, doc="path steps")
    mode: Literal["a", "b"] = param("a", doc="which mode")
    layer: str = param("auto", doc="a free text")
    weight: float = param(fraction=True, open_low=True, doc="a required fraction")
    flag: bool = param(False, doc="a switch")


def _read(table: dict[str, object]) -> _Example:
    return read_params(_Example, TableReader(table, "p.toml [x]"))


def test_read_with_defaults_and_given_values() -> None:
    got = _read({"weight": 0.5})
    assert got == _Example(weight=0.5)
    assert (got.n_steps, got.mode, got.layer, got.sigma_px, got.flag) == (32, "a", "auto", 4.0,
                                                                           False)
    got = _read({"weight": 1, "n_steps": 8, "mode": "b", "sigma_px": 2, "flag": True})
    assert got == _Example(weight=1.0, n_steps=8, mode="b", sigma_px=2.0, flag=True)
    assert read_params(NoParams, TableReader({}, "w")) == NoParams()


@pytest.mark.parametrize(("table", "message"), [
    ({"weight": 0.5, "mode": "c"},
     "p.toml [x]: mode = 'c' is not allowed; expected one of 'a', 'b'"),
    ({"weight": 0.5, "n_steps": 0}, "n_steps = 0 is not allowed; expected an integer in [1, 4096]"),
    ({"weight": 0.5, "n_steps": 2.5}, "n_steps = 2.5 is not allowed; expected an integer"),
    ({"weight": 0.5, "sigma_px": 100}, "sigma_px = 100 is not allowed; expected a finite number "
                                       "in [0.1, 64.0]"),
    ({"weight": 0.0}, "weight = 0.0 is not allowed; expected a fraction in (0, 1.0]"),
    ({"weight": 50}, "a fraction, not a percent"),
    ({"weight": 0.5, "flag": "yes"}, "flag = 'yes' is not allowed; expected true or false"),
    ({}, "p.toml [x]: missing required key 'weight'"),
])
def test_a_bad_value_is_a_one_line_error_naming_key_value_and_allowed(
        table: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        _read(table)
    text = str(info.value)
    assert "\n" not in text
    assert message in text


def test_an_unknown_key_is_refused_with_the_allowed_keys() -> None:
    with pytest.raises(ProtocolError, match=r"unknown key 'n_step'; allowed keys: flag, layer, "
                                            r"mode, n_steps, sigma_px, weight$"):
        _read({"weight": 0.5, "n_step": 8})


def test_run_time_allowed_values_replace_the_declared_ones() -> None:
    reader = TableReader({"weight": 0.5, "layer": "x"}, "w")
    with pytest.raises(ProtocolError, match="layer = 'x' is not allowed; expected one of 'y'"):
        read_params(_Example, reader, allowed={"layer": ["y"]})
    with pytest.raises(TypeError, match="no parameter 'nope'"):
        read_params(_Example, TableReader({}, "w"), allowed={"nope": ["y"]})


def test_normalised_is_json_safe_and_typed_by_declaration() -> None:
    values = normalised(_Example(weight=1, sigma_px=2))
    assert values == {"n_steps": 32, "mode": "a", "layer": "auto", "weight": 1.0, "flag": False,
                      "sigma_px": 2.0}
    assert isinstance(values["weight"], float)
    assert isinstance(values["sigma_px"], float)
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    # own fields first, then the mixin's: the order of the protocol reference
    assert list(values) == ["n_steps", "mode", "layer", "weight", "flag", "sigma_px"]
    assert normalised(NoParams()) == {}
    with pytest.raises(ProtocolError, match="weight = nan is not allowed"):
        normalised(_Example(weight=float("nan")))


def test_reference_rows() -> None:
    rows = {row["key"]: row for row in reference(_Example)}
    assert list(rows) == ["n_steps", "mode", "layer", "weight", "flag", "sigma_px"]
    assert rows["n_steps"] == {"key": "n_steps", "type": "integer", "default": "32",
                               "allowed": "[1, 4096]", "required": False, "unit": "",
                               "doc": "path steps"}
    assert (rows["weight"]["default"], rows["weight"]["required"]) == ("required", True)
    assert rows["weight"]["allowed"] == "(0, 1.0]"
    assert rows["mode"]["allowed"] == "one of 'a', 'b'"
    assert rows["layer"]["allowed"] == ""
    assert rows["flag"]["allowed"] == "true or false"
    assert (rows["sigma_px"]["unit"], rows["sigma_px"]["allowed"]) == ("px", "[0.1, 64.0]")
    assert reference(NoParams) == []
    json.dumps(list(rows.values()), allow_nan=False)


def test_declaration_mistakes_are_caught() -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        param(1, doc=" ")
    with pytest.raises(ValueError, match="needs fraction=True"):
        param(0.5, open_low=True, doc="x")

    @dataclass(frozen=True, kw_only=True)
    class OutOfBounds:
        n: int = param(0, minimum=1, doc="x")

    with pytest.raises(TypeError, match="default 0 does not satisfy its own declaration"):
        reference(OutOfBounds)

    @dataclass(frozen=True, kw_only=True)
    class Undeclared:
        n: int = 1

    with pytest.raises(TypeError, match="not declared with param"):
        reference(Undeclared)

    @dataclass(kw_only=True)
    class Mutable:
        n: int = param(1, doc="x")

    with pytest.raises(TypeError, match="frozen"):
        reference(Mutable)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_method_declares_every_parameter_with_a_doc(name: str) -> None:
    cls = METHODS[name]
    rows = cls.parameter_reference()  # also checks every declaration
    assert {row["key"] for row in rows} == {f.name for f in fields(cls.Params)}
    for row in rows:
        assert row["doc"].strip(), f"{name}.{row['key']} has no doc"
    # the parameters never shadow the identity keys of describe()
    assert not {row["key"] for row in rows} & {"method_id", "name", "reference", "aggregation"}
    json.dumps(rows, allow_nan=False)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_reference_rows_are_what_the_reader_reads(name: str) -> None:
    # the declaration is the reader: recording from_params gives the same keys, in order
    cls = METHODS[name]
    recorder = RecordingReader(name)
    cls.from_params(name, recorder)
    columns = ("key", "type", "default", "allowed")
    assert [{c: row[c] for c in columns} for row in cls.parameter_reference()] == [
        {c: row[c] for c in columns} for row in recorder.keys]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_from_params_reads_params_and_describe_includes_them(name: str) -> None:
    cls = METHODS[name]
    required = {row["key"] for row in reference(cls.Params) if row["required"]}
    table = {"noise_weight": 0.5, "of": "saliency"}
    table = {key: table[key] for key in required}
    method = cls.from_params(name, TableReader(table, "w"))
    assert isinstance(method, AttributionMethod)
    assert type(method.params) is cls.Params
    described = method.describe()
    for key, value in normalised(method.params).items():
        assert described[key] == value


def test_a_method_refuses_another_methods_params() -> None:
    saliency, smoothgrad = METHODS["saliency"], METHODS["smoothgrad"]
    with pytest.raises(TypeError, match=r"SmoothGrad takes SmoothGrad\.Params, got NoParams$"):
        smoothgrad("m", saliency.Params())


def test_inverted_lists_the_other_methods() -> None:
    (of,) = METHODS["inverted"].parameter_reference()
    assert of["required"]
    others = sorted(set(METHODS) - {"inverted"})
    assert of["allowed"] == "one of " + ", ".join(repr(n) for n in others)
