"""Discriminative validity: the falsification test ranks maps the way the ground truth does.

``truth_tracking`` serves two declared uses on worlds with known identity regions:

- the **dose-response** family — maps of known, graded quality (the oracle blurred, shifted or
  blended with noise) — where the test's outcome must rise with the maps' quality;
- **real methods ranked against the truth** — the registry's methods ordered by the outcome
  versus by their ground-truth quality.

The statistic is Spearman's rank correlation across the methods with a pair-bootstrap interval
(:mod:`faceattr.validity.tracking`); quality is measured as in Arras et al., "CLEVR-XAI",
Information Fusion 81, 2022.

``metric_tracks_truth`` states "outcome X tracks the truth at least as well as deletion AUC":
on the run's ``metric_values.json`` (``[metric_validity]``), the paired pair-bootstrap of
``rho(X) - rho(reference)`` (both Spearman correlations with the ground truth across one
``truth_tracking`` family's maps, on the same resamples;
:func:`faceattr.validity.metric_section.paired_comparison`) has its one-sided ``1 - alpha``
lower bound at or above ``-margin`` (non-inferiority at a declared margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from faceattr.claims.base import ClaimResult, ClaimSpec, RunArtefacts
from faceattr.config import TableReader
from faceattr.rng import numpy_generator
from faceattr.validity.dose_response import STRATA, Family
from faceattr.validity.metric_section import REFERENCE_METRIC, paired_comparison
from faceattr.validity.metrics import METRICS
from faceattr.validity.tracking import OUTCOMES, QUALITIES, Outcome, Quality, truth_tracking

__all__ = ["MetricTrackingParams", "TrackingParams", "check_metric_tracks_truth",
           "check_truth_tracking", "declared_families", "read_metric_tracks_truth",
           "read_truth_tracking"]


@dataclass(frozen=True, slots=True)
class TrackingParams:
    """``truth_tracking``: Spearman(quality, outcome) across ``methods`` >= ``min_spearman``."""

    methods: tuple[str, ...]
    quality: Quality
    outcome: Outcome
    min_spearman: float
    on: str
    n_resamples: int
    alpha: float


def read_truth_tracking(reader: TableReader, method_ids: set[str]) -> TrackingParams:
    """Parse the method set (>= 3), the measures, the threshold and what it is judged on."""
    methods = reader.texts("methods", default=[], allowed=sorted(method_ids))
    params = TrackingParams(
        methods=tuple(sorted(set(methods))),
        quality=cast(Quality, reader.text("quality", default="roc_auc", allowed=QUALITIES)),
        outcome=cast(Outcome, reader.text("outcome", default="pass_rate", allowed=OUTCOMES)),
        min_spearman=reader.number("min_spearman", minimum=-1.0, maximum=1.0),
        on=reader.text("on", default="estimate", allowed=["estimate", "ci_low"]),
        n_resamples=reader.integer("n_resamples", default=2000, minimum=100, maximum=100_000),
        alpha=reader.fraction("alpha", default=0.05, open_low=True, maximum=0.5))
    reader.finish()
    if len(params.methods) < 3 or len(params.methods) != len(methods):
        raise ValueError(f"{reader.where}: methods must list at least 3 distinct method ids, "
                         f"got {methods}")
    return params


def check_truth_tracking(claim_id: str, params: TrackingParams,
                         run: RunArtefacts) -> ClaimResult:
    """Judge the rank agreement between ground-truth quality and the declared outcome."""
    result = truth_tracking(
        run.records, params.methods, quality=params.quality, outcome=params.outcome,
        rng=numpy_generator(run.summary.seed, "truth_tracking", claim_id),
        n_resamples=params.n_resamples, alpha=params.alpha)
    statement = (f"the falsification outcome '{params.outcome}' ranks {len(params.methods)} "
                 f"maps as their ground-truth {params.quality} does: Spearman "
                 f"({params.on}) >= {params.min_spearman:g}")
    table = "; ".join(
        f"{m} q={'-' if q is None else f'{q:.3f}'} o={'-' if o is None else f'{o:.3f}'}"
        for m, q, o in zip(result.methods, result.mean_quality, result.mean_outcome,
                           strict=True))
    if result.spearman is None:
        return ClaimResult(claim_id=claim_id, kind="truth_tracking", family="validity",
                           statement=statement, passed=False, statistic="Spearman rho",
                           observed=0.0, comparison=">=", threshold=params.min_spearman,
                           n=result.n_pairs, interval_low=None, interval_high=None,
                           interval_method=None, alpha=params.alpha,
                           detail=f"undefined: {result.undefined_reason}; {table}")
    judged = result.spearman if params.on == "estimate" else result.low
    passed = judged is not None and judged >= params.min_spearman
    interval = (result.low, result.high) if result.low is not None else (None, None)
    return ClaimResult(
        claim_id=claim_id, kind="truth_tracking", family="validity", statement=statement,
        passed=passed, statistic=f"Spearman rho ({params.on})", observed=result.spearman,
        comparison=">=", threshold=params.min_spearman, n=result.n_pairs,
        interval_low=interval[0], interval_high=interval[1],
        interval_method=(f"pair bootstrap, percentile, {params.n_resamples} resamples"
                         if interval[0] is not None else None),
        alpha=params.alpha,
        detail=f"rho = {result.spearman:.3f} over {len(result.methods)} methods; {table}")


def declared_families(claims: Sequence[ClaimSpec], method_ids: set[str]) -> list[Family]:
    """The families of maps a protocol's ``truth_tracking`` claims declare (for the report's
    dose-response section, :mod:`faceattr.validity.dose_response`)."""
    families = []
    for spec in claims:
        if spec.kind != "truth_tracking":
            continue
        params = read_truth_tracking(TableReader(spec.params_dict(), f"claim {spec.id}"),
                                     method_ids)
        families.append(Family(claim_id=spec.id, methods=params.methods, quality=params.quality,
                               primary_outcome=params.outcome, n_resamples=params.n_resamples,
                               alpha=params.alpha))
    return families


@dataclass(frozen=True, slots=True)
class MetricTrackingParams:
    """``metric_tracks_truth``: ``outcome`` tracks ``quality`` on ``family`` at least as well
    as ``reference``, up to ``margin`` (a difference of Spearman correlations, in [0, 2])."""

    outcome: str
    reference: str
    family: str
    quality: Quality
    stratum: str
    margin: float
    n_resamples: int
    alpha: float


def _measures() -> list[str]:
    return [*OUTCOMES, *(m.name for m in METRICS)]


def read_metric_tracks_truth(reader: TableReader, method_ids: set[str]) -> MetricTrackingParams:
    """Parse the two measures (a falsification outcome or a metric each), the family (the id
    of a ``truth_tracking`` claim), the quality, stratum, margin and level."""
    del method_ids  # the family names the maps
    params = MetricTrackingParams(
        outcome=reader.text("outcome", allowed=_measures()),
        reference=reader.text("reference", default=REFERENCE_METRIC, allowed=_measures()),
        family=reader.text("family"),
        quality=cast(Quality, reader.text("quality", default="rank_accuracy",
                                          allowed=QUALITIES)),
        stratum=reader.text("stratum", default="all", allowed=list(STRATA)),
        margin=reader.number("margin", default=0.0, minimum=0.0, maximum=2.0),
        n_resamples=reader.integer("n_resamples", default=2000, minimum=100, maximum=100_000),
        alpha=reader.fraction("alpha", default=0.05, open_low=True, maximum=0.5))
    reader.finish()
    if params.outcome == params.reference:
        raise ValueError(f"{reader.where}: outcome and reference are both {params.outcome!r}")
    return params


def _family_methods(family: str, run: RunArtefacts) -> tuple[str, ...]:
    for spec in run.claims:
        if spec.id == family and spec.kind == "truth_tracking":
            return read_truth_tracking(TableReader(spec.params_dict(), f"claim {spec.id}"),
                                       set(run.summary.methods)).methods
    known = [s.id for s in run.claims if s.kind == "truth_tracking"]
    raise ValueError(f"family {family!r} is not the id of a truth_tracking claim of this "
                     f"protocol (declared: {', '.join(known) or 'none'})")


def _metric_result(claim_id: str, params: MetricTrackingParams, statement: str, *,
                   passed: bool, statistic: str, observed: float, n: int,
                   interval: tuple[float, float] | None, detail: str) -> ClaimResult:
    return ClaimResult(
        claim_id=claim_id, kind="metric_tracks_truth", family="validity", statement=statement,
        passed=passed, statistic=statistic, observed=observed, comparison=">=",
        threshold=-params.margin, n=n,
        interval_low=None if interval is None else interval[0],
        interval_high=None if interval is None else interval[1],
        interval_method=None if interval is None else (
            f"paired pair bootstrap, percentiles {params.alpha:g} / {1 - params.alpha:g}, "
            f"{params.n_resamples} resamples"),
        alpha=params.alpha, detail=detail)


def check_metric_tracks_truth(claim_id: str, params: MetricTrackingParams,
                              run: RunArtefacts) -> ClaimResult:
    """Judge "outcome tracks the truth at least as well as the reference" by the paired
    bootstrap of the difference of the two Spearman correlations (one-sided, ``alpha``)."""
    methods = _family_methods(params.family, run)
    if run.metric_values is None:
        raise ValueError(f"claim {claim_id}: the run has no metric_values.json; declare a "
                         "[metric_validity] table (n_pairs, metrics) in the protocol")
    for name in (params.outcome, params.reference):
        if name in {m.name for m in METRICS} and name not in run.metric_values.metrics:
            raise ValueError(f"claim {claim_id}: metric {name!r} is not among [metric_validity]"
                             f" metrics {list(run.metric_values.metrics)}")
    statement = (f"'{params.outcome}' ranks the {len(methods)} maps of {params.family} by their "
                 f"ground-truth {params.quality} ({params.stratum} pairs) at least as well as "
                 f"'{params.reference}': rho({params.outcome}) - rho({params.reference}) >= "
                 f"-{params.margin:g} (one-sided {1 - params.alpha:g} lower bound)")
    mismatches = run.metric_values.map_mismatches(run.records)
    if mismatches:
        return _metric_result(claim_id, params, statement, passed=False,
                              statistic="maps whose digests differ", observed=-2.0, n=0,
                              interval=None,
                              detail=f"the metrics were computed on other maps than the "
                                     f"falsification test's: {', '.join(mismatches[:5])}")
    result = paired_comparison(
        run.records, run.metric_values, methods, family=params.family, measure=params.outcome,
        reference=params.reference, quality=params.quality, stratum=params.stratum,
        seed=run.summary.seed, n_resamples=params.n_resamples, alpha=params.alpha)
    statistic = "one-sided lower bound of rho(outcome) - rho(reference)"
    if result.lower is None or result.upper is None or result.difference is None \
            or result.rho_measure is None or result.rho_reference is None:
        return _metric_result(claim_id, params, statement, passed=False, statistic=statistic,
                              observed=-2.0, n=result.n_pairs, interval=None,
                              detail=f"undefined: {result.undefined_reason}")
    return _metric_result(
        claim_id, params, statement, passed=result.lower >= -params.margin,
        statistic=statistic, observed=result.lower, n=result.n_pairs,
        interval=(result.lower, result.upper),
        detail=(f"rho({params.outcome}) = {result.rho_measure:.3f}, rho({params.reference}) = "
                f"{result.rho_reference:.3f}, difference {result.difference:+.3f} "
                f"[{result.lower:+.3f}, {result.upper:+.3f}] over {len(methods)} maps, "
                f"{result.n_pairs} pairs ({result.n_dropped} resamples dropped)"))
