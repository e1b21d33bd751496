"""Discriminative validity: the falsification test ranks maps the way the ground truth does.

``truth_tracking`` serves two declared uses on worlds with known identity regions:

- the **dose-response** family — maps of known, graded quality (the oracle blurred, shifted or
  blended with noise) — where the test's outcome must rise with the maps' quality;
- **real methods ranked against the truth** — the registry's methods ordered by the outcome
  versus by their ground-truth quality.

The statistic is Spearman's rank correlation across the methods with a pair-bootstrap interval
(:mod:`faceattr.validity.tracking`); quality is measured as in Arras et al., "CLEVR-XAI",
Information Fusion 81, 2022.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from faceattr.claims.base import ClaimResult, ClaimSpec, RunArtefacts
from faceattr.config import TableReader
from faceattr.rng import numpy_generator
from faceattr.validity.dose_response import Family
from faceattr.validity.tracking import OUTCOMES, QUALITIES, Outcome, Quality, truth_tracking

__all__ = ["TrackingParams", "check_truth_tracking", "declared_families", "read_truth_tracking"]


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
