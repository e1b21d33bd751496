"""The ``metric_validity`` section of ``validity.json``, and the paired comparison behind the
``metric_tracks_truth`` claim.

On the run's ``metric_values.json`` (:mod:`faceattr.validity.metric_artefact`: the evaluation
metrics of every family's maps on a subset of the run's pairs) and the run's records (the
ground-truth quality of each map and the falsification outcomes, on the same maps and pairs),
every measure — each metric of :data:`~faceattr.validity.metrics.METRICS` and each
falsification outcome — is ranked by Spearman's correlation with the ground-truth quality
across the family's maps (:func:`faceattr.validity.metric_validity.metric_validity`), per
stratum, with pair-bootstrap intervals.

"Outcome X tracks the truth at least as well as deletion AUC" is a statement about the
*difference* of two correlations computed on the same pairs, so its interval must come from
the same resamples: :func:`paired_comparison` replays the row's bootstrap stream
``(seed, "metric_validity", family, stratum, quality)`` once, computes both correlations on
every resample, and takes the one-sided percentile bound of ``rho(X) - rho(reference)``
(Efron & Tibshirani 1993, ch. 13; a non-inferiority bound at a declared margin, as in
Wellek 2010, ch. 1). A resample on which either correlation is undefined (a constant column)
is dropped; when more than half are, the comparison is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.validity.dose_response import STRATA, Family, _stratum
from faceattr.validity.metric_artefact import MetricValuesResult
from faceattr.validity.metric_validity import (
    DEFAULT_QUALITIES,
    FALSIFICATION_MEASURES,
    _metric_matrix,
    _orientation_of,
    metric_validity,
)
from faceattr.validity.tracking import (
    Outcome,
    Quality,
    _resampled_means,
    _row_spearman,
    _spearman,
    method_table,
)

__all__ = ["REFERENCE_METRIC", "ReferenceComparison", "measure_matrices",
           "metric_validity_section", "paired_comparison", "spearman_draws"]

#: The metric every other measure is compared with by default (Petsiuk et al. 2018).
REFERENCE_METRIC = "deletion_auc"
_FloatMatrix = NDArray[np.float64]


def spearman_draws(q: _FloatMatrix, o: _FloatMatrix, *, rng: np.random.Generator,
                   n_resamples: int) -> NDArray[np.float64]:
    """Spearman of the per-map means on each pair resample (NaN where undefined).

    Draws the resamples exactly as :mod:`faceattr.validity.tracking`'s bootstrap does (blocks
    of 500, ``rng.integers(0, n, (size, n))``), so a replayed stream gives the same resamples
    as the table's intervals.
    """
    n = q.shape[1]
    draws = np.empty(n_resamples)
    block = 500
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        weights = np.zeros((size, n))
        np.add.at(weights, (np.arange(size)[:, None], idx), 1.0)
        draws[start:start + size] = _row_spearman(_resampled_means(q, weights),
                                                  _resampled_means(o, weights))
    return draws


def measure_matrices(records: Sequence[PairRecord], result: MetricValuesResult,
                     methods: Sequence[str], *, quality: Quality, stratum: str,
                     measures: Sequence[str]) -> tuple[_FloatMatrix, list[_FloatMatrix]]:
    """The quality matrix and each measure's *oriented* matrix (maps x pairs), on the metric
    pairs of ``stratum``; maps in sorted order.

    Raises
    ------
    ValueError
        For an unknown stratum or measure, or a stratum without pairs.
    """
    if stratum not in STRATA:
        raise ValueError(f"unknown stratum {stratum!r}; known: {', '.join(STRATA)}")
    names = tuple(sorted(set(methods)))
    chosen = set(result.pair_ids)
    subset = _stratum([r for r in records if r.pair_id in chosen and r.method in set(names)],
                      stratum)
    if not subset:
        raise ValueError(f"no metric pairs in stratum {stratum!r}")
    pair_ids, q, _ = method_table(subset, names, quality, "margin")
    values = result.values()
    out = []
    for measure in measures:
        if measure in values:
            matrix = _metric_matrix(values[measure], names, pair_ids, measure)
        else:
            matrix = method_table(subset, names, quality, cast(Outcome, measure))[2]
        out.append(_orientation_of(measure) * matrix)
    return q, out


@dataclass(frozen=True, slots=True)
class ReferenceComparison:
    """``rho(measure) - rho(reference)`` on one family, stratum and quality, paired.

    Attributes
    ----------
    family, stratum, quality, measure, reference : str
    rho_measure, rho_reference : float or None
        The two correlations on all pairs (oriented: higher = tracks the truth).
    difference : float or None
        ``rho_measure - rho_reference``.
    lower, upper : float or None
        The ``alpha`` and ``1 - alpha`` percentiles of the paired resampled difference: the
        one-sided ``1 - alpha`` lower bound, and the matching upper bound.
    n_pairs, n_resamples, n_dropped : int
        Pairs, resamples, and resamples dropped as undefined.
    alpha : float
    undefined_reason : str or None
    """

    family: str
    stratum: str
    quality: str
    measure: str
    reference: str
    rho_measure: float | None
    rho_reference: float | None
    difference: float | None
    lower: float | None
    upper: float | None
    n_pairs: int
    n_resamples: int
    n_dropped: int
    alpha: float
    undefined_reason: str | None

    def __post_init__(self) -> None:
        if (self.difference is None) != (self.undefined_reason is not None):
            raise ValueError("a comparison has a difference or a reason, not both")
        for value in (self.difference, self.lower, self.upper):
            if value is not None and not -2.0 - 1e-12 <= value <= 2.0 + 1e-12:
                raise ValueError(f"difference of correlations {value!r} outside [-2, 2]")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (None for undefined values, never NaN)."""
        return {"family": self.family, "stratum": self.stratum, "quality": self.quality,
                "measure": self.measure, "reference": self.reference,
                "rho_measure": self.rho_measure, "rho_reference": self.rho_reference,
                "difference": self.difference, "lower": self.lower, "upper": self.upper,
                "n_pairs": self.n_pairs, "n_resamples": self.n_resamples,
                "n_dropped": self.n_dropped, "alpha": self.alpha,
                "undefined_reason": self.undefined_reason}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def paired_comparison(records: Sequence[PairRecord], result: MetricValuesResult,
                      methods: Sequence[str], *, family: str, measure: str, reference: str,
                      quality: Quality, stratum: str, seed: int, n_resamples: int,
                      alpha: float) -> ReferenceComparison:
    """Compare two measures' rank agreement with the truth on the same pair resamples.

    The resamples come from the stream ``(seed, "metric_validity", family, stratum,
    quality)``, the one the section's rows use, so the comparison and the two rows' intervals
    rest on the same resamples.
    """
    q, (o_measure, o_reference) = measure_matrices(
        records, result, methods, quality=quality, stratum=stratum,
        measures=(measure, reference))
    rho_m, rho_r = _spearman(q, o_measure), _spearman(q, o_reference)
    base = dict(family=family, stratum=stratum, quality=quality, measure=measure,
                reference=reference, rho_measure=_finite(rho_m), rho_reference=_finite(rho_r),
                n_pairs=q.shape[1], n_resamples=n_resamples, alpha=alpha)
    if not (math.isfinite(rho_m) and math.isfinite(rho_r)):
        which = measure if not math.isfinite(rho_m) else reference
        return ReferenceComparison(**base, difference=None, lower=None,
                                   upper=None, n_dropped=0,
                                   undefined_reason=f"the correlation of {which} with the "
                                                    "truth is undefined (a constant or "
                                                    "missing column)")
    rng = numpy_generator(seed, "metric_validity", family, stratum, quality)
    draws_m = spearman_draws(q, o_measure, rng=rng, n_resamples=n_resamples)
    rng = numpy_generator(seed, "metric_validity", family, stratum, quality)
    draws_r = spearman_draws(q, o_reference, rng=rng, n_resamples=n_resamples)
    differences = draws_m - draws_r
    finite = differences[np.isfinite(differences)]
    dropped = n_resamples - int(finite.size)
    if finite.size < n_resamples / 2:
        return ReferenceComparison(**base, difference=None, lower=None,
                                   upper=None, n_dropped=dropped,
                                   undefined_reason=f"{dropped} of {n_resamples} resamples "
                                                    "leave a correlation undefined")
    lower, upper = np.quantile(finite, [alpha, 1.0 - alpha])
    return ReferenceComparison(**base, difference=float(rho_m - rho_r),
                               lower=float(lower), upper=float(upper), n_dropped=dropped,
                               undefined_reason=None)


def _qualities(family: Family) -> tuple[str, ...]:
    return tuple(dict.fromkeys((family.quality, *DEFAULT_QUALITIES)))


def metric_validity_section(records: Sequence[PairRecord], result: MetricValuesResult,
                            families: Sequence[Family], *, seed: int) -> dict[str, Any]:
    """The ``metric_validity`` section: every measure against the truth per family, stratum and
    quality, and every measure compared with :data:`REFERENCE_METRIC` (when computed).

    A map whose metrics were computed on other bytes than the falsification test's (digest
    mismatch) voids the section: it lists the mismatches and no rows.
    """
    mismatches = result.map_mismatches(records)
    families_json = [{"family": f.claim_id, "methods": list(f.methods), "quality": f.quality,
                      "alpha": f.alpha, "n_resamples": f.n_resamples} for f in families]
    document: dict[str, Any] = {
        "n_pairs": result.n_pairs, "pair_ids": list(result.pair_ids),
        "metrics": list(result.metrics), "settings": dict(result.settings),
        "falsification_measures": list(FALSIFICATION_MEASURES),
        "reference": REFERENCE_METRIC if REFERENCE_METRIC in result.metrics else None,
        "families": families_json, "map_mismatches": mismatches, "empty": [], "rows": [],
        "comparisons": []}
    if mismatches:
        return document
    chosen = set(result.pair_ids)
    mine = [r for r in records if r.pair_id in chosen]
    values = result.values()
    for family in families:
        rows, empty = metric_validity(
            mine, values, {family.claim_id: family.methods}, seed=seed,
            qualities=_qualities(family), n_resamples=family.n_resamples, alpha=family.alpha)
        document["rows"] += [r.to_json() for r in rows]
        document["empty"] += list(empty)
        if document["reference"] is None:
            continue
        for row in rows:
            if row.quality != family.quality or row.measure == REFERENCE_METRIC:
                continue
            document["comparisons"].append(paired_comparison(
                mine, result, family.methods, family=family.claim_id, measure=row.measure,
                reference=REFERENCE_METRIC, quality=family.quality,
                stratum=row.stratum, seed=seed, n_resamples=family.n_resamples,
                alpha=family.alpha).to_json())
    return document

