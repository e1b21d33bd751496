"""``[calibration]``: how Theorem 3.5's thresholds are derived for the protocol's model, and
the pre-registration block ``[calibration.result]`` that ``faceattr calibrate`` writes.

The calibration split is the ``[data]`` table with the keys of ``[calibration.data]``
replaced (e.g. another synthetic identity range, other LFW folds); its identities must be
disjoint from the test split's (checked by :func:`faceattr.calibration.split.check_disjoint`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceattr.config import ProtocolError, TableReader
from faceattr.data.sources import SourceSpec, parse_source
from faceattr.io import dumps_strict

__all__ = ["RULES", "THEOREM_KEYS", "CalibrationResult", "CalibrationSpec", "MethodFr",
           "calibration_inputs_sha256", "parse_calibration"]

#: The calibration rules (:mod:`faceattr.calibration.rule`).
RULES = ("genuine_angle_quantiles",)
#: ``[falsification]`` keys that calibration writes or that only the verdict reads: a change in
#: them does not invalidate the calibration's measurements.
THEOREM_KEYS = ("tau_high", "tau_low", "epsilon", "verdict", "test_alpha", "thresholds",
                "thresholds_reason")


@dataclass(frozen=True, slots=True)
class MethodFr:
    """A method's falsified counts on the calibration split (both verdicts, intention-to-treat)."""

    theorem_falsified: int
    simple_falsified: int
    n: int


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """``[calibration.result]``: the thresholds and what they were derived from."""

    rule: str
    tau_high: float
    tau_low: float
    epsilon: float
    model: str
    weights_sha256: str
    manifest_sha256: str
    inputs_sha256: str
    n_pairs: int
    n_genuine: int
    faceattr_version: str
    date_utc: str
    methods: tuple[tuple[str, MethodFr], ...]


@dataclass(frozen=True, slots=True)
class CalibrationSpec:
    """``[calibration]``: the rule, its quantiles, the split, and the written result."""

    rule: str
    genuine_quantile: float
    blind_quantile: float
    data: SourceSpec
    data_overrides: tuple[tuple[str, Any], ...]
    result: CalibrationResult | None


def _sha(r: TableReader, key: str) -> str:
    value = r.text(key)
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ProtocolError(f"{r.where}: {key} = {value!r} is not a SHA-256 (64 hex digits); "
                            "run `faceattr calibrate` again")
    return value


def _parse_methods(where: str, table: Mapping[str, Any]) -> tuple[tuple[str, MethodFr], ...]:
    out = []
    for method_id in sorted(table):
        r = TableReader(table[method_id], f"{where} methods.{method_id}")
        n = r.integer("n", minimum=1)
        out.append((method_id, MethodFr(
            theorem_falsified=r.integer("theorem_falsified", minimum=0, maximum=n),
            simple_falsified=r.integer("simple_falsified", minimum=0, maximum=n), n=n)))
        r.finish()
    return tuple(out)


def _parse_result(where: str, table: Mapping[str, Any]) -> CalibrationResult:
    r = TableReader(table, f"{where} [calibration.result]")
    result = CalibrationResult(
        rule=r.text("rule", allowed=list(RULES)), tau_high=r.number("tau_high"),
        tau_low=r.number("tau_low"), epsilon=r.number("epsilon", minimum=0.0),
        model=r.text("model"), weights_sha256=_sha(r, "weights_sha256"),
        manifest_sha256=_sha(r, "manifest_sha256"), inputs_sha256=_sha(r, "inputs_sha256"),
        n_pairs=r.integer("n_pairs", minimum=1), n_genuine=r.integer("n_genuine", minimum=0),
        faceattr_version=r.text("faceattr_version"), date_utc=r.text("date_utc"),
        methods=_parse_methods(r.where, r.table("methods")))
    r.finish()
    return result


def parse_calibration(where: str, table: Mapping[str, Any], data_table: Mapping[str, Any],
                      base_dir: Path) -> CalibrationSpec:
    """Validate ``[calibration]`` (and its ``data`` overrides and ``result``)."""
    r = TableReader(table, f"{where} [calibration]")
    rule = r.text("rule", allowed=list(RULES))
    genuine_q = r.fraction("genuine_quantile", default=0.5, open_low=True, maximum=0.95)
    blind_q = r.fraction("blind_quantile", default=0.5, open_low=True, maximum=0.95)
    overrides = dict(r.table("data"))
    if "source" in overrides:
        raise ProtocolError(f"{where} [calibration.data]: source is [data]'s; the calibration "
                            "split replaces keys of [data] (e.g. first_identity, folds, n_pairs)")
    if not overrides:
        raise ProtocolError(f"{where} [calibration.data]: empty; replace at least one key of "
                            "[data] so that the calibration split has other identities")
    data = parse_source({**data_table, **overrides}, f"{where} [calibration.data]", base_dir)
    result = _parse_result(where, r.table("result")) if "result" in table else None
    r.finish()
    return CalibrationSpec(rule=rule, genuine_quantile=genuine_q, blind_quantile=blind_q,
                           data=data, data_overrides=tuple(sorted(overrides.items())),
                           result=result)


def calibration_inputs_sha256(raw: Mapping[str, Any]) -> str:
    """SHA-256 of what the calibration's measurements depend on, from the protocol as written:
    the seed and alpha, ``[data]``, ``[model]``, ``[falsification]`` without
    :data:`THEOREM_KEYS` and ``[calibration]`` without its result. Relative paths stay as
    written, so the hash is the same on every machine."""
    head = raw["protocol"]
    calibration = {k: v for k, v in raw["calibration"].items() if k != "result"}
    falsification = {k: v for k, v in raw["falsification"].items() if k not in THEOREM_KEYS}
    document = {"seed": head["seed"], "alpha": head["alpha"], "data": raw["data"],
                "model": raw["model"], "falsification": falsification,
                "calibration": calibration}
    return hashlib.sha256(dumps_strict(document).encode()).hexdigest()
