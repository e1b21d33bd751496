"""Which evaluation metric tracks the truth? Every metric ranked against the ground truth.

MetaQuantus (Hedström et al., "The meta-evaluation problem in explainable AI", TMLR 2023)
shows that deletion / insertion AUC, ROAD, faithfulness correlation and pixel flipping
disagree, but has no ground truth to say which is right. On the synthetic world the identity
regions are known, so every map has a measured quality (:mod:`faceattr.falsification.quality`:
rank accuracy, mask ROC AUC; Arras et al. 2022). This module correlates each metric of
:mod:`faceattr.validity.metrics` — and, beside them, the falsification test's own outcomes
(the margin ``d_high - d_low`` and ``1 - FR`` of each verdict, read from the records by
:func:`faceattr.validity.tracking.method_table`) — with that quality across the maps of each
family a protocol declares in a ``truth_tracking`` claim (the dose-response family; the real
methods).

The statistic is :mod:`faceattr.validity.tracking`'s: Spearman's correlation across maps of the
per-map means over pairs, with a percentile pair-bootstrap interval (Efron & Tibshirani 1993).
Each metric is oriented so that higher means "judged better" (deletion AUC, MoRF area and the
pixel-flipping area are negated), so a metric that tracks the truth has a correlation near 1.
Within one (family, stratum, quality) every measure is bootstrapped on the same resampled pairs
(one stream ``(seed, "metric_validity", family, stratum, quality)`` replayed per measure), so the
intervals of two measures are paired.

Command (builds the maps itself; a few minutes on one CPU thread with the defaults)::

    python -m faceattr.validity.metric_validity --level 2 --n-pairs 30
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.validity.dose_response import STRATA
from faceattr.validity.metrics import METRICS, PairMetrics, metric_values

# tracking's Spearman-of-means, its undefined reasons and its pair bootstrap, reused as they are
from faceattr.validity.tracking import (
    QUALITIES,
    Outcome,
    Quality,
    _bootstrap,
    _column_means,
    _spearman,
    _undefined_reason,
    method_table,
)

__all__ = ["FALSIFICATION_MEASURES", "MeasureTracking", "MetricValidityTable", "MetricValues",
           "collect_metric_values", "metric_validity"]

#: The falsification outcomes ranked beside the metrics (all oriented higher = better).
FALSIFICATION_MEASURES: tuple[str, ...] = ("margin", "concordance", "pass_rate_simple",
                                           "pass_rate_theorem")
DEFAULT_QUALITIES: tuple[str, ...] = ("rank_accuracy", "roc_auc")
MetricValues = Mapping[str, Mapping[tuple[str, str], float | None]]
"""``{metric: {(method, pair_id): value or None}}``."""
_ORIENTATION = {m.name: m.orientation for m in METRICS}


@dataclass(frozen=True, slots=True)
class MeasureTracking:
    """Rank agreement of one measure with the ground truth on one family and stratum.

    Attributes
    ----------
    family, stratum, quality, measure : str
    source : {"metric", "falsification"}
    orientation : {1, -1}
        The sign applied before ranking (``-1``: lower raw value = better).
    methods : tuple of str
        The maps compared (sorted).
    mean_quality, mean_value : tuple of float or None
        Per map, in ``methods`` order: mean quality and mean *raw* (unoriented) value.
    spearman, low, high : float or None
        Spearman of quality vs oriented value across the maps, and its pair-bootstrap
        percentile interval at ``1 - alpha``; None with ``undefined_reason`` when undefined.
    n_pairs, n_resamples : int
    alpha : float
    undefined_reason : str or None
    """

    family: str
    stratum: str
    quality: str
    measure: str
    source: Literal["metric", "falsification"]
    orientation: int
    methods: tuple[str, ...]
    mean_quality: tuple[float | None, ...]
    mean_value: tuple[float | None, ...]
    spearman: float | None
    low: float | None
    high: float | None
    n_pairs: int
    n_resamples: int
    alpha: float
    undefined_reason: str | None

    def __post_init__(self) -> None:
        if (self.spearman is None) != (self.undefined_reason is not None):
            raise ValueError("a measure's tracking has a correlation or a reason, not both")
        if self.orientation not in (1, -1):
            raise ValueError(f"orientation must be 1 or -1, got {self.orientation!r}")
        for value in (self.spearman, self.low, self.high):
            if value is not None and not -1.0 - 1e-12 <= value <= 1.0 + 1e-12:
                raise ValueError(f"rank correlation {value!r} outside [-1, 1]")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (None for undefined values, never NaN)."""
        return {"family": self.family, "stratum": self.stratum, "quality": self.quality,
                "measure": self.measure, "source": self.source,
                "orientation": self.orientation, "methods": list(self.methods),
                "mean_quality": list(self.mean_quality), "mean_value": list(self.mean_value),
                "spearman": self.spearman, "low": self.low, "high": self.high,
                "n_pairs": self.n_pairs, "n_resamples": self.n_resamples, "alpha": self.alpha,
                "undefined_reason": self.undefined_reason}


@dataclass(frozen=True, slots=True)
class MetricValidityTable:
    """Every measure against the truth, per family, stratum and quality.

    Attributes
    ----------
    protocol : str
        The protocol's name.
    level : int or None
        The synthetic world's difficulty level.
    seed, n_pairs : int
    settings : dict
        :meth:`MetricSettings.to_json` of the metrics (empty when the values were given).
    families : tuple of (str, tuple of str)
    empty : tuple of str
        ``family/stratum`` cells without pairs (nothing to correlate).
    rows : tuple of MeasureTracking
    """

    protocol: str
    level: int | None
    seed: int
    n_pairs: int
    settings: Mapping[str, Any]
    families: tuple[tuple[str, tuple[str, ...]], ...]
    empty: tuple[str, ...]
    rows: tuple[MeasureTracking, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``allow_nan=False`` safe)."""
        return {"protocol": self.protocol, "level": self.level, "seed": self.seed,
                "n_pairs": self.n_pairs, "settings": dict(self.settings),
                "families": [{"family": f, "methods": list(m)} for f, m in self.families],
                "empty": list(self.empty), "rows": [r.to_json() for r in self.rows]}

    def row(self, family: str, measure: str, *, quality: str = "rank_accuracy",
            stratum: str = "all") -> MeasureTracking:
        """The row of one (family, measure, quality, stratum)."""
        for r in self.rows:
            if (r.family, r.measure, r.quality, r.stratum) == (family, measure, quality,
                                                               stratum):
                return r
        raise KeyError(f"no row {family}/{measure}/{quality}/{stratum}")

    def format(self, *, quality: str = "rank_accuracy") -> str:
        """A text table: one block per family, measures x strata, ``rho [low, high]``."""
        lines = [f"protocol {self.protocol} (level {self.level}), {self.n_pairs} pairs, "
                 f"Spearman({quality}, oriented measure), 95% pair-bootstrap intervals"]
        for family, methods in self.families:
            rows = [r for r in self.rows if r.family == family and r.quality == quality]
            strata = [s for s in STRATA if any(r.stratum == s for r in rows)]
            lines.append(f"\n{family} ({len(methods)} maps)")
            lines.append(f"{'measure':<26}" + "".join(f"{s:>22}" for s in strata))
            for measure in dict.fromkeys(r.measure for r in rows):
                mine = [x for x in rows if x.measure == measure]
                cells = [f"{_cell(x):>22}" for stratum in strata
                         for x in mine if x.stratum == stratum]
                sign = "-" if mine[0].orientation < 0 else ""
                lines.append(f"{sign + measure:<26}" + "".join(cells))
        return "\n".join(lines)


def _cell(r: MeasureTracking) -> str:
    if r.spearman is None:
        return "undefined"
    if r.low is None or r.high is None:
        return f"{r.spearman:.3f} [n/a]"
    return f"{r.spearman:.3f} [{r.low:.2f}, {r.high:.2f}]"


def _orientation_of(measure: str, orientations: Mapping[str, int] | None = None) -> int:
    if orientations is not None and measure in orientations:
        return orientations[measure]
    if measure in FALSIFICATION_MEASURES:
        return 1
    return _ORIENTATION[measure]


def collect_metric_values(results: Sequence[PairMetrics]) -> dict[str, dict[tuple[str, str],
                                                                          float | None]]:
    """``{metric: {(method, pair_id): value}}`` of :data:`~faceattr.validity.metrics.METRICS`."""
    out: dict[str, dict[tuple[str, str], float | None]] = {m.name: {} for m in METRICS}
    for result in results:
        for name, value in metric_values(result).items():
            out[name][(result.method, result.pair_id)] = value
    return out


def _metric_matrix(values: Mapping[tuple[str, str], float | None], methods: Sequence[str],
                   pair_ids: Sequence[str], measure: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    matrix = np.full((len(methods), len(pair_ids)), np.nan)
    for a, method in enumerate(methods):
        for b, pair_id in enumerate(pair_ids):
            if (method, pair_id) not in values:
                raise ValueError(f"metric {measure} has no value for method {method!r}, pair "
                                 f"{pair_id!r}: compute it on the records' pairs")
            value = values[(method, pair_id)]
            if value is not None:
                matrix[a, b] = value
    return matrix


def _optional(values: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[float | None, ...]:
    return tuple(float(v) if math.isfinite(v) else None for v in values)


def metric_validity(records: Sequence[PairRecord], values: MetricValues,
                    families: Mapping[str, Sequence[str]], *, seed: int,
                    qualities: Sequence[str] = DEFAULT_QUALITIES,
                    strata: Sequence[str] = STRATA,
                    falsification: Sequence[str] = FALSIFICATION_MEASURES,
                    orientations: Mapping[str, int] | None = None, n_resamples: int = 2000,
                    alpha: float = 0.05) -> tuple[tuple[MeasureTracking, ...], tuple[str, ...]]:
    """Spearman of ground-truth quality vs every measure, per family, stratum and quality.

    Parameters
    ----------
    records : sequence of PairRecord
        Falsification records of (at least) every family's methods on the same pairs; they
        carry each map's ground-truth quality and the falsification outcomes.
    values : mapping
        ``{metric: {(method, pair_id): value or None}}`` (:func:`collect_metric_values`); a
        metric's orientation comes from :data:`~faceattr.validity.metrics.METRICS` or
        ``orientations``.
    families : mapping of str to sequence of str
        Family name -> at least three method ids.
    seed : int
        Bootstrap streams ``(seed, "metric_validity", family, stratum, quality)``.
    qualities, strata, falsification : sequences of str
        Which truths (:data:`~faceattr.validity.tracking.QUALITIES`), which strata
        (``all`` / ``genuine`` / ``impostor``) and which falsification outcomes
        (:data:`~faceattr.validity.tracking.OUTCOMES`) to rank.
    orientations : mapping of str to int, optional
        Orientation of metrics not in :data:`~faceattr.validity.metrics.METRICS` (tests plant
        their own).
    n_resamples : int
    alpha : float

    Returns
    -------
    (rows, empty)
        The rows (family x stratum x quality x measure order) and the ``family/stratum`` cells
        that have no pairs.
    """
    for quality in qualities:
        if quality not in QUALITIES:
            raise ValueError(f"unknown quality {quality!r}; known: {', '.join(QUALITIES)}")
    rows: list[MeasureTracking] = []
    empty: list[str] = []
    for family, members in families.items():
        methods = tuple(sorted(set(members)))
        if len(methods) < 3:
            raise ValueError(f"family {family!r} needs at least 3 distinct methods")
        mine = [r for r in records if r.method in set(methods)]
        for stratum in strata:
            subset = mine if stratum == "all" else [
                r for r in mine if r.is_genuine == (stratum == "genuine")]
            if not subset:
                empty.append(f"{family}/{stratum}")
                continue
            for quality in qualities:
                q_name = cast(Quality, quality)
                pair_ids, q, _ = method_table(subset, methods, q_name, "margin")
                measures: list[tuple[str, Literal["metric", "falsification"], Any]] = [
                    (name, "falsification",
                     method_table(subset, methods, q_name, cast(Outcome, name))[2])
                    for name in falsification]
                measures += [(name, "metric", _metric_matrix(v, methods, pair_ids, name))
                             for name, v in values.items()]
                for name, source, matrix in measures:
                    sign = _orientation_of(name, orientations)
                    oriented = sign * matrix
                    rho = _spearman(q, oriented)
                    mq, mo = _column_means(q), _column_means(oriented)
                    low = high = None
                    reason = None
                    if math.isfinite(rho):
                        rng = numpy_generator(seed, "metric_validity", family, stratum, quality)
                        low, high = _bootstrap(q, oriented, rng=rng, n_resamples=n_resamples,
                                               alpha=alpha)
                    else:
                        reason = _undefined_reason(mq, mo, methods)
                    rows.append(MeasureTracking(
                        family=family, stratum=stratum, quality=quality, measure=name,
                        source=source, orientation=sign, methods=methods,
                        mean_quality=_optional(mq), mean_value=_optional(_column_means(matrix)),
                        spearman=float(rho) if math.isfinite(rho) else None, low=low,
                        high=high, n_pairs=len(pair_ids), n_resamples=n_resamples, alpha=alpha,
                        undefined_reason=reason))
    return tuple(rows), tuple(empty)
