"""Does the falsification test rank maps the way the ground truth does?

Given a set of methods run on the same pairs of a world with known identity regions, each
method gets a ground-truth quality (the mean over pairs of a :mod:`~faceattr.falsification.
quality` measure of its ranked map) and a falsification outcome, oriented so that higher means
"the test judged the map better":

- ``pass_rate``: ``1 - FR`` of the primary verdict, intention-to-treat;
- ``pass_rate_simple`` / ``pass_rate_theorem``: ``1 - FR`` of each verdict, intention-to-treat;
- ``margin``: mean ``d_high - d_low`` (radians) over valid pairs;
- ``concordance``: mean ``1 - pairwise_violation_frac`` over valid pairs (the share of the
  K x K drift comparisons that come out the right way round).

The statistic is Spearman's rank correlation between quality and outcome across the methods
(Spearman 1904), with a percentile bootstrap interval that resamples pairs — the same
resampled pairs for every method, since all methods saw the same pairs (Efron & Tibshirani
1993). A test with discriminative validity has a correlation near 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from faceattr.records import PairRecord

__all__ = ["OUTCOMES", "QUALITIES", "Outcome", "Quality", "TrackingResult", "method_table",
           "truth_tracking"]

Outcome = Literal["pass_rate", "pass_rate_simple", "pass_rate_theorem", "margin", "concordance"]
Quality = Literal["roc_auc", "rank_accuracy", "mass_accuracy"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
QUALITIES: tuple[str, ...] = get_args(Quality)
_FloatMatrix = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """Rank agreement between ground-truth quality and one falsification outcome.

    Attributes
    ----------
    methods : tuple of str
        The methods compared (sorted).
    quality, outcome : str
        Which measures.
    mean_quality, mean_outcome : tuple of float or None
        Per method, in ``methods`` order (None where no pair defines the measure).
    spearman : float or None
        Rank correlation across methods; None (with ``undefined_reason``) when a method has no
        value or either column is constant.
    low, high : float or None
        Percentile bootstrap interval over pairs at ``1 - alpha``.
    n_pairs, n_resamples : int
    alpha : float
    undefined_reason : str or None
    """

    methods: tuple[str, ...]
    quality: str
    outcome: str
    mean_quality: tuple[float | None, ...]
    mean_outcome: tuple[float | None, ...]
    spearman: float | None
    low: float | None
    high: float | None
    n_pairs: int
    n_resamples: int
    alpha: float
    undefined_reason: str | None

    def __post_init__(self) -> None:
        if (self.spearman is None) != (self.undefined_reason is not None):
            raise ValueError("a tracking result has a correlation or a reason, not both")
        for value in (self.spearman, self.low, self.high):
            if value is not None and not -1.0 - 1e-12 <= value <= 1.0 + 1e-12:
                raise ValueError(f"rank correlation {value!r} outside [-1, 1]")

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (None for undefined values, never NaN)."""
        return {"methods": list(self.methods), "quality": self.quality, "outcome": self.outcome,
                "mean_quality": list(self.mean_quality),
                "mean_outcome": list(self.mean_outcome), "spearman": self.spearman,
                "low": self.low, "high": self.high, "n_pairs": self.n_pairs,
                "n_resamples": self.n_resamples, "alpha": self.alpha,
                "undefined_reason": self.undefined_reason}


def _outcome_value(record: PairRecord, outcome: Outcome) -> float:
    if outcome == "pass_rate":
        return 0.0 if record.falsified else 1.0
    if outcome == "pass_rate_simple":
        return 0.0 if record.falsified_simple else 1.0
    if outcome == "pass_rate_theorem":
        return 0.0 if record.falsified_theorem else 1.0
    if record.status != "valid":
        return math.nan
    if outcome == "margin":
        assert record.margin_rad is not None  # a valid record carries it
        return record.margin_rad
    assert record.pairwise_violation_frac is not None
    return 1.0 - record.pairwise_violation_frac


def _quality_value(record: PairRecord, quality: Quality) -> float:
    value = {"roc_auc": record.gt_roc_auc, "rank_accuracy": record.gt_rank_accuracy,
             "mass_accuracy": record.gt_mass_accuracy}[quality]
    return math.nan if value is None else value


def method_table(records: Sequence[PairRecord], methods: Sequence[str], quality: Quality,
                 outcome: Outcome) -> tuple[list[str], _FloatMatrix, _FloatMatrix]:
    """Per-pair quality and outcome matrices (methods x pairs), NaN where undefined.

    Raises
    ------
    ValueError
        When a method is missing or the methods did not see the same pairs.
    """
    by_method: dict[str, dict[str, PairRecord]] = {m: {} for m in methods}
    for record in records:
        if record.method in by_method:
            by_method[record.method][record.pair_id] = record
    pair_sets = {m: frozenset(rows) for m, rows in by_method.items()}
    empty = sorted(m for m, rows in pair_sets.items() if not rows)
    if empty:
        raise ValueError(f"no records for method(s) {', '.join(empty)}")
    if len(set(pair_sets.values())) != 1:
        raise ValueError("the methods were run on different pairs; truth tracking needs the "
                         "same pairs for every method")
    pair_ids = sorted(next(iter(pair_sets.values())))
    names = sorted(methods)
    q = np.array([[_quality_value(by_method[m][p], quality) for p in pair_ids] for m in names])
    o = np.array([[_outcome_value(by_method[m][p], outcome) for p in pair_ids] for m in names])
    return pair_ids, q, o


def _column_means(matrix: _FloatMatrix) -> NDArray[np.float64]:
    counts = np.isfinite(matrix).sum(axis=1)
    sums = np.where(np.isfinite(matrix), matrix, 0.0).sum(axis=1)
    means: NDArray[np.float64] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means


def _spearman(q: _FloatMatrix, o: _FloatMatrix) -> float:
    """Spearman of the per-method means; NaN when undefined."""
    mq, mo = _column_means(q), _column_means(o)
    if not (np.isfinite(mq).all() and np.isfinite(mo).all()):
        return math.nan
    if np.ptp(mq) == 0 or np.ptp(mo) == 0:
        return math.nan
    return float(stats.spearmanr(mq, mo).statistic)


def _undefined_reason(mq: NDArray[np.float64], mo: NDArray[np.float64],
                      methods: Sequence[str]) -> str:
    for name, values in (("quality", mq), ("outcome", mo)):
        missing = [m for m, v in zip(methods, values, strict=True) if not math.isfinite(v)]
        if missing:
            return f"no pair defines the {name} of {', '.join(missing)}"
    return "the per-method values are constant: no ranking to correlate"


def truth_tracking(records: Sequence[PairRecord], methods: Sequence[str], *, quality: Quality,
                   outcome: Outcome, rng: np.random.Generator, n_resamples: int = 2000,
                   alpha: float = 0.05) -> TrackingResult:
    """Spearman correlation across ``methods`` between ground-truth quality and an outcome.

    Parameters
    ----------
    records : sequence of PairRecord
        Records of (at least) the methods, all on the same pairs.
    methods : sequence of str
        At least three method ids.
    quality, outcome : str
        See :data:`QUALITIES` and :data:`OUTCOMES`.
    rng : numpy.random.Generator
        Drives the pair bootstrap (explicit; the result is a function of its state).
    n_resamples : int
        Bootstrap resamples.
    alpha : float
        Two-sided level of the interval.

    Returns
    -------
    TrackingResult
    """
    if len(set(methods)) < 3:
        raise ValueError(f"truth tracking needs at least 3 distinct methods, got {len(methods)}")
    if quality not in QUALITIES or outcome not in OUTCOMES:
        raise ValueError(f"unknown quality {quality!r} or outcome {outcome!r}")
    pair_ids, q, o = method_table(records, methods, quality, outcome)
    names = tuple(sorted(methods))
    mq, mo = _column_means(q), _column_means(o)
    base = dict(methods=names, quality=quality, outcome=outcome,
                mean_quality=tuple(None if not math.isfinite(v) else float(v) for v in mq),
                mean_outcome=tuple(None if not math.isfinite(v) else float(v) for v in mo),
                n_pairs=len(pair_ids), n_resamples=n_resamples, alpha=alpha)
    rho = _spearman(q, o)
    if not math.isfinite(rho):
        return TrackingResult(**base, spearman=None, low=None, high=None,  # type: ignore[arg-type]
                              undefined_reason=_undefined_reason(mq, mo, names))
    low, high = _bootstrap(q, o, rng=rng, n_resamples=n_resamples, alpha=alpha)
    return TrackingResult(**base, spearman=rho, low=low, high=high,  # type: ignore[arg-type]
                          undefined_reason=None)


def _resampled_means(matrix: _FloatMatrix, weights: NDArray[np.float64]) -> _FloatMatrix:
    """Per-method means (resamples x methods) of a pair resample given by pair counts."""
    finite = np.isfinite(matrix)
    sums = weights @ np.where(finite, matrix, 0.0).T
    counts = weights @ finite.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means: _FloatMatrix = np.where(counts > 0, sums / counts, np.nan)
    return means


def _row_spearman(a: _FloatMatrix, b: _FloatMatrix) -> NDArray[np.float64]:
    """Spearman of each row pair (average ranks for ties, as scipy); NaN where undefined."""
    ra, rb = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    undefined = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)) | \
        (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0) | (denominator == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / denominator
    result: NDArray[np.float64] = np.where(undefined, np.nan, np.clip(rho, -1.0, 1.0))
    return result


def _bootstrap(q: _FloatMatrix, o: _FloatMatrix, *, rng: np.random.Generator,
               n_resamples: int, alpha: float) -> tuple[float | None, float | None]:
    n = q.shape[1]
    draws = np.empty(n_resamples)
    block = 500  # resamples per vectorised block (bounded memory)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        weights = np.zeros((size, n))
        np.add.at(weights, (np.arange(size)[:, None], idx), 1.0)
        draws[start:start + size] = _row_spearman(_resampled_means(q, weights),
                                                  _resampled_means(o, weights))
    finite = draws[np.isfinite(draws)]
    if finite.size < n_resamples // 2:
        return None, None
    # resamples where the ranking is undefined (constant columns) are dropped
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
