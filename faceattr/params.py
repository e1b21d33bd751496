"""Component parameters declared once.

A component (an attribution method, ...) declares its protocol parameters as one frozen
dataclass whose fields are made with :func:`param`: the default (or none: required), the bounds
or allowed values, the unit and a one-line doc. Everything else comes from that declaration:

- :func:`read_params` reads the protocol table strictly (typed, bounded, unknown keys refused)
  with :class:`~faceattr.config.TableReader`, so its one-line messages name the key, the value
  and what is allowed;
- :func:`normalised` gives every parameter with its value, JSON-ready, for the run hash and the
  provenance (``blur_sigma_px = 4`` and ``4.0`` normalise alike);
- :func:`reference` gives the rows of the protocol reference (``faceattr.reference``).

The field's type says how it is read: ``bool`` (true/false), ``int`` (integer within
``[minimum, maximum]``), ``float`` (finite number within ``[minimum, maximum]``, or with
``fraction=True`` a fraction in ``[0, maximum]``, ``(0, maximum]`` with ``open_low``), ``str``
(optionally from ``allowed``) or a ``Literal`` of strings (allowed: its values).

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Smoothing:
...     sigma_px: float = param(1.5, minimum=0.0, maximum=16.0, unit="px",
...                             doc="standard deviation of the Gaussian smoothing")
>>> normalised(Smoothing(sigma_px=2))
{'sigma_px': 2.0}
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from faceattr.config import ProtocolError, TableReader

__all__ = ["NoParams", "ParamSpec", "normalised", "param", "read_params", "reference"]

P = TypeVar("P")

Kind = Literal["boolean", "integer", "number", "fraction", "text"]

_METADATA_KEY = "faceattr.param"


@dataclass(frozen=True, kw_only=True)
class NoParams:
    """No parameters: the protocol entry accepts no keys."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """What :func:`param` records in a field's metadata (see :func:`param`)."""

    doc: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    open_low: bool = False
    fraction: bool = False


def param(default: Any = MISSING, *, minimum: float | None = None,
          maximum: float | None = None, allowed: Sequence[str] | None = None, unit: str = "",
          doc: str, open_low: bool = False, fraction: bool = False) -> Any:
    """Declare one parameter: a :func:`dataclasses.field` carrying its :class:`ParamSpec`.

    Parameters
    ----------
    default : optional
        The value when the protocol omits the key; omitted: the key is required.
    minimum, maximum : float, optional
        Inclusive bounds of an ``int`` or ``float`` field (``maximum`` of a fraction: 1).
    allowed : sequence of str, optional
        The values a ``str`` field may take (a ``Literal`` field's values are its own).
    unit : str
        The unit, e.g. ``"px"`` (empty: none).
    doc : str
        One line saying what the parameter does; required and non-empty.
    open_low : bool
        A fraction excludes 0 (``(0, maximum]``); needs ``fraction=True``.
    fraction : bool
        Read a ``float`` field as a fraction (never a percent): ``[0, maximum]``.
    """
    if not doc.strip() or "\n" in doc.strip():
        raise ValueError(f"param(doc=...) must be one non-empty line, got {doc!r}")
    if open_low and not fraction:
        raise ValueError("param(open_low=True) needs fraction=True")
    if fraction and minimum is not None:
        raise ValueError("a fraction's lower bound is 0 (or open at 0): no minimum")
    spec = ParamSpec(doc=doc.strip(), unit=unit, minimum=minimum, maximum=maximum,
                     allowed=None if allowed is None else tuple(allowed), open_low=open_low,
                     fraction=fraction)
    metadata = {_METADATA_KEY: spec}
    if default is MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: Kind
    default: Any  # dataclasses.MISSING when required
    spec: ParamSpec
    allowed: tuple[str, ...] | None


def _kind(owner: str, name: str, annotation: object, spec: ParamSpec
          ) -> tuple[Kind, tuple[str, ...] | None]:
    where = f"{owner}.{name}"
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"{where}: only Literal types of strings are supported")
        if spec.allowed is not None:
            raise TypeError(f"{where}: a Literal field takes its allowed values from its type")
        return "text", tuple(values)
    bounded = spec.minimum is not None or spec.maximum is not None
    if annotation is bool or annotation is str:
        if bounded or spec.fraction:
            raise TypeError(f"{where}: bounds apply to int and float fields only")
        if annotation is bool:
            if spec.allowed is not None:
                raise TypeError(f"{where}: allowed values apply to str fields only")
            return "boolean", None
        return "text", spec.allowed
    if spec.allowed is not None:
        raise TypeError(f"{where}: allowed values apply to str fields only")
    if annotation is int:
        if spec.fraction:
            raise TypeError(f"{where}: a fraction is a float field")
        for bound in (spec.minimum, spec.maximum):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
                raise TypeError(f"{where}: an int field's bounds are integers, got {bound!r}")
        return "integer", None
    if annotation is float:
        return ("fraction" if spec.fraction else "number"), None
    raise TypeError(f"{where}: unsupported parameter type {annotation!r} "
                    "(bool, int, float, str or a Literal of strings)")


def _check_default(owner: str, item: _Field) -> _Field:
    if item.default is MISSING:
        return item
    try:
        default = _json_value(item, item.default, f"{owner} default")
    except ProtocolError as exc:
        raise TypeError(f"{owner}.{item.name}: default {item.default!r} does not satisfy its "
                        f"own declaration ({exc})") from None
    return dataclasses.replace(item, default=default)


_DECLARED: dict[type, tuple[_Field, ...]] = {}


def _fields(cls: type) -> tuple[_Field, ...]:
    """The declared fields of ``cls``: its own first, then each base's (MRO order); cached."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _declared_fields(cls)
    return _DECLARED[cls]


def _declared_fields(cls: type) -> tuple[_Field, ...]:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__qualname__} must be a frozen dataclass")
    hints = get_type_hints(cls)

    def rank(f: dataclasses.Field[Any]) -> int:
        return next(i for i, klass in enumerate(cls.__mro__)
                    if f.name in inspect.get_annotations(klass))

    declared = sorted(dataclasses.fields(cls), key=rank)  # stable: declaration order kept
    out = []
    for f in declared:
        spec = f.metadata.get(_METADATA_KEY)
        if not isinstance(spec, ParamSpec):
            raise TypeError(f"{cls.__qualname__}.{f.name} is not declared with param()")
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__qualname__}.{f.name}: default factories are not supported")
        kind, allowed = _kind(cls.__qualname__, f.name, hints[f.name], spec)
        out.append(_check_default(cls.__qualname__, _Field(f.name, kind, f.default, spec, allowed)))
    return tuple(out)


def _read(item: _Field, reader: TableReader, allowed: Sequence[str] | None) -> object:
    spec = item.spec
    given: dict[str, Any] = {} if item.default is MISSING else {"default": item.default}
    if item.kind == "boolean":
        return reader.boolean(item.name, **given)
    if item.kind == "integer":
        return reader.integer(item.name, minimum=None if spec.minimum is None else int(
            spec.minimum), maximum=None if spec.maximum is None else int(spec.maximum), **given)
    if item.kind == "number":
        return reader.number(item.name, minimum=None if spec.minimum is None else float(
            spec.minimum), maximum=None if spec.maximum is None else float(spec.maximum),
            **given)
    if item.kind == "fraction":
        return reader.fraction(item.name, open_low=spec.open_low,
                               maximum=1.0 if spec.maximum is None else float(spec.maximum),
                               **given)
    return reader.text(item.name, allowed=item.allowed if allowed is None else allowed,
                       **given)


def read_params(cls: type[P], reader: TableReader, *,
                allowed: Mapping[str, Sequence[str]] | None = None) -> P:
    """Read every field of the frozen dataclass ``cls`` strictly from ``reader``, then finish.

    Parameters
    ----------
    cls : type
        A frozen dataclass whose fields are declared with :func:`param`.
    reader : TableReader
        The component's protocol table.
    allowed : mapping, optional
        Allowed values known only at run time, by field name (e.g. the names of the other
        registered methods); they replace the declared ones.

    Raises
    ------
    ProtocolError
        One line naming the key, the bad value and what is allowed; or the first unknown key
        and the allowed keys.
    """
    items = _fields(cls)
    extra = sorted(set(allowed or {}) - {item.name for item in items})
    if extra:
        raise TypeError(f"{cls.__qualname__} has no parameter {extra[0]!r}")
    values = {item.name: _read(item, reader, (allowed or {}).get(item.name)) for item in items}
    reader.finish()
    make: Callable[..., P] = cls
    return make(**values)


def _json_value(item: _Field, value: object, where: str) -> Any:
    """``value`` checked against the declaration and typed by it (floats as floats)."""
    return _read(item, TableReader({item.name: value}, where), None)


def normalised(params: object) -> dict[str, Any]:
    """Every parameter of ``params`` with its value, JSON-ready (floats as floats).

    Keys follow the declaration order of :func:`reference`; values have the declared type, so
    two protocols that mean the same parameters normalise to the same dictionary.
    """
    if isinstance(params, type) or not dataclasses.is_dataclass(params):
        raise TypeError(f"normalised() takes a parameter dataclass instance, got {params!r}")
    where = f"{type(params).__qualname__} parameters"
    return {item.name: _json_value(item, getattr(params, item.name), where)
            for item in _fields(type(params))}


def _allowed_text(item: _Field, choices: Sequence[str] | None) -> str:
    """What is allowed, worded as :class:`~faceattr.config.RecordingReader` words it."""
    spec = item.spec
    if item.kind == "text":
        return "" if choices is None else "one of " + ", ".join(repr(a) for a in choices)
    if item.kind == "boolean":
        return "true or false"
    if item.kind == "fraction":
        top = 1.0 if spec.maximum is None else float(spec.maximum)
        return f"{'(' if spec.open_low else '['}0, {top}]"
    if spec.minimum is None and spec.maximum is None:
        return ""
    cast = int if item.kind == "integer" else float
    low = "-inf" if spec.minimum is None else cast(spec.minimum)
    high = "inf" if spec.maximum is None else cast(spec.maximum)
    return f"[{low}, {high}]"


_TYPE_NAMES: dict[Kind, str] = {"boolean": "boolean", "integer": "integer", "number": "number",
                                "fraction": "fraction", "text": "string"}


def reference(cls: type, *, allowed: Mapping[str, Sequence[str]] | None = None
              ) -> list[dict[str, Any]]:
    """The protocol reference of ``cls``: one JSON-ready row per parameter, in reading order.

    Each row has ``key``, ``type`` (boolean, integer, number, fraction or string), ``default``
    (its ``repr``, or ``"required"``), ``allowed`` (e.g. ``"[1, 4096]"``, ``"(0, 1.0]"``,
    ``"one of 'a', 'b'"``; empty when anything goes) — the row
    :class:`~faceattr.config.RecordingReader` records for the same read — plus ``required``
    (bool), ``unit`` and ``doc``. ``allowed`` (the argument) as in :func:`read_params`.
    """
    rows = []
    for item in _fields(cls):
        required = item.default is MISSING
        choices = (allowed or {}).get(item.name, item.allowed)
        rows.append({"key": item.name, "type": _TYPE_NAMES[item.kind],
                     "default": "required" if required else repr(item.default),
                     "allowed": _allowed_text(item, choices), "required": required,
                     "unit": item.spec.unit, "doc": item.spec.doc})
    return rows
