"""``metric_values.json``: the evaluation metrics of the run's maps, on the run's pairs.

Written once by the run's metric-validity stage (``[metric_validity]``,
:mod:`faceattr.experiments.metric_stage`): for every map of the families the protocol's
``truth_tracking`` claims declare, on ``n_pairs`` pairs spread over the run, the scalar metrics
of :data:`~faceattr.validity.metrics.METRICS` (deletion / insertion AUC, ROAD, faithfulness
correlation, pixel flipping) and the SHA-256 of the map they were computed on, which must equal
the run record's ``map_sha256`` (the same maps as the falsification test's). Strict JSON both
ways: exact keys, no defaults, None (never NaN) for an undefined value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceattr.io import read_json, write_json
from faceattr.records import PairRecord

__all__ = ["METRIC_VALUES_FILE", "MetricValueRow", "MetricValuesResult", "load_metric_values",
           "write_metric_values"]

METRIC_VALUES_FILE = "metric_values.json"
_ROW_KEYS = {"method", "pair_id", "is_genuine", "status", "map_sha256", "values"}
_KEYS = {"n_pairs", "pair_ids", "methods", "metrics", "settings", "rows"}


def _exact(row: Mapping[str, Any], keys: set[str], what: str) -> None:
    if set(row) != keys:
        raise ValueError(f"{what} keys mismatch: missing {sorted(keys - set(row))}, "
                         f"unexpected {sorted(set(row) - keys)}")


@dataclass(frozen=True, slots=True)
class MetricValueRow:
    """The metrics of one (method, pair).

    Attributes
    ----------
    method, pair_id : str
    is_genuine : bool
    status : {"valid", "trivial", "error"}
        ``trivial``: a constant map; ``error``: the attribution failed on the pair (its run
        record is ``error:<type>``); neither has metric values (every value None).
    map_sha256 : str or None
        Digest of the map the metrics were computed on (None: no finite map).
    values : tuple of (str, float or None)
        ``(metric, value)`` in the result's ``metrics`` order; None where undefined.
    """

    method: str
    pair_id: str
    is_genuine: bool
    status: str
    map_sha256: str | None
    values: tuple[tuple[str, float | None], ...]

    def __post_init__(self) -> None:
        if self.status not in ("valid", "trivial", "error"):
            raise ValueError(f"metric row status {self.status!r} is not valid|trivial|error")
        for name, value in self.values:
            if value is not None and not math.isfinite(value):
                raise ValueError(f"metric {name} of {self.method}/{self.pair_id} is not finite")
        if self.status != "valid" and any(v is not None for _, v in self.values):
            raise ValueError(f"a {self.status} metric row carries no values")
        if self.status == "error" and self.map_sha256 is not None:
            raise ValueError("an error metric row has no map")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"method": self.method, "pair_id": self.pair_id, "is_genuine": self.is_genuine,
                "status": self.status, "map_sha256": self.map_sha256,
                "values": dict(self.values)}

    @classmethod
    def from_json(cls, row: Mapping[str, Any], metrics: Sequence[str]) -> MetricValueRow:
        """Rebuild (exact keys; the values' keys must be ``metrics``)."""
        _exact(row, _ROW_KEYS, "metric row")
        values = row["values"]
        _exact(values, set(metrics), "metric row values")
        return cls(method=str(row["method"]), pair_id=str(row["pair_id"]),
                   is_genuine=bool(row["is_genuine"]), status=str(row["status"]),
                   map_sha256=row["map_sha256"],
                   values=tuple((m, None if values[m] is None else float(values[m]))
                                for m in metrics))


@dataclass(frozen=True, slots=True)
class MetricValuesResult:
    """The metric-validity stage's artefact.

    Attributes
    ----------
    n_pairs : int
    pair_ids : tuple of str
        The pairs (sorted), every method on each.
    methods, metrics : tuple of str
    settings : mapping
        :meth:`~faceattr.validity.metrics.MetricSettings.to_json`.
    rows : tuple of MetricValueRow
        One per (method, pair), method-major in ``methods`` x ``pair_ids`` order.
    """

    n_pairs: int
    pair_ids: tuple[str, ...]
    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    settings: Mapping[str, Any]
    rows: tuple[MetricValueRow, ...]

    def __post_init__(self) -> None:
        if self.n_pairs != len(self.pair_ids) or len(set(self.pair_ids)) != self.n_pairs:
            raise ValueError("metric values: n_pairs must count the distinct pair ids")
        keys = [(r.method, r.pair_id) for r in self.rows]
        expected = [(m, p) for m in self.methods for p in self.pair_ids]
        if keys != expected:
            raise ValueError("metric values: one row per (method, pair), in method x pair order")
        for row in self.rows:
            if tuple(name for name, _ in row.values) != self.metrics:
                raise ValueError(f"metric row {row.method}/{row.pair_id}: metrics out of order")

    def values(self) -> dict[str, dict[tuple[str, str], float | None]]:
        """``{metric: {(method, pair_id): value or None}}``
        (:data:`faceattr.validity.metric_validity.MetricValues`)."""
        out: dict[str, dict[tuple[str, str], float | None]] = {m: {} for m in self.metrics}
        for row in self.rows:
            for name, value in row.values:
                out[name][(row.method, row.pair_id)] = value
        return out

    def map_mismatches(self, records: Sequence[PairRecord]) -> list[str]:
        """``method/pair`` of every row whose record is missing, or whose map digest differs
        from the run record's where the record carries one (an ``error:target`` record drops
        its map statistics): metrics and falsification saw different maps."""
        digests = {(r.method, r.pair_id): r.map_sha256 for r in records}
        out = []
        for row in self.rows:
            key = (row.method, row.pair_id)
            if key not in digests or (digests[key] is not None
                                      and digests[key] != row.map_sha256):
                out.append(f"{row.method}/{row.pair_id}")
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``allow_nan=False`` safe)."""
        return {"n_pairs": self.n_pairs, "pair_ids": list(self.pair_ids),
                "methods": list(self.methods), "metrics": list(self.metrics),
                "settings": dict(self.settings), "rows": [r.to_json() for r in self.rows]}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> MetricValuesResult:
        """Rebuild (exact keys, validated)."""
        _exact(document, _KEYS, "metric values")
        metrics = tuple(str(m) for m in document["metrics"])
        return cls(n_pairs=int(document["n_pairs"]),
                   pair_ids=tuple(str(p) for p in document["pair_ids"]),
                   methods=tuple(str(m) for m in document["methods"]), metrics=metrics,
                   settings=dict(document["settings"]),
                   rows=tuple(MetricValueRow.from_json(r, metrics) for r in document["rows"]))


def write_metric_values(run_root: Path, result: MetricValuesResult) -> Path:
    """Write ``metric_values.json`` (atomic, strict JSON)."""
    path = run_root / METRIC_VALUES_FILE
    write_json(path, result.to_json())
    return path


def load_metric_values(run_root: Path) -> MetricValuesResult | None:
    """The run's metric values, or None when the protocol declares no ``[metric_validity]``."""
    path = run_root / METRIC_VALUES_FILE
    return MetricValuesResult.from_json(read_json(path)) if path.exists() else None
