"""Guards against construction artefacts: degenerate per-pair metrics and duplicate methods.

A per-pair metric that is constant across every pair of a method is the signature of a
defaulted lookup or of an artefact (the research code's FR 0.0 with std 0.0, PITFALLS.md #1,
#12); two differently named methods with identical maps are one method (PITFALLS.md #20).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader

__all__ = ["DegenerateParams", "DistinctParams", "check_distinct_maps", "check_not_degenerate",
           "read_distinct", "read_not_degenerate"]

METRICS = ("margin_rad", "pairwise_violation_frac", "d_high_rad", "d_low_rad", "score_clean")


@dataclass(frozen=True, slots=True)
class DegenerateParams:
    """``not_degenerate``: the metric varies across pairs for every method not exempted."""

    metric: str
    exempt: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class DistinctParams:
    """``distinct_maps``: no two methods give identical maps on every shared pair."""

    exempt: tuple[str, ...]


def read_not_degenerate(reader: TableReader, method_ids: set[str]) -> DegenerateParams:
    """Parse the metric and the exempted methods (with the reason they may be constant)."""
    metric = reader.text("metric", allowed=list(METRICS))
    exempt = tuple(reader.texts("exempt", default=[], allowed=sorted(method_ids)))
    reason = reader.text("reason", default="")
    reader.finish()
    if exempt and not reason:
        raise ValueError(f"{reader.where}: exempt methods need a reason")
    return DegenerateParams(metric=metric, exempt=exempt, reason=reason)


def read_distinct(reader: TableReader, method_ids: set[str]) -> DistinctParams:
    """Parse the exempted methods."""
    params = DistinctParams(exempt=tuple(reader.texts("exempt", default=[],
                                                      allowed=sorted(method_ids))))
    reader.finish()
    return params


def check_not_degenerate(claim_id: str, params: DegenerateParams,
                         run: RunArtefacts) -> ClaimResult:
    """No per-pair metric is constant across all valid pairs of a method (unless declared)."""
    constant: list[str] = []
    checked = 0
    for method in sorted(run.summary.methods):
        if method in params.exempt:
            continue
        values = [getattr(r, params.metric) for r in run.records_of(method)
                  if r.status == "valid"]
        if len(values) < 2:
            continue
        checked += 1
        if len(set(values)) == 1:
            constant.append(f"{method} ({params.metric} = {values[0]!r} on all "
                            f"{len(values)} valid pairs)")
    passed = not constant
    exempt = f"; exempt: {', '.join(params.exempt)} ({params.reason})" if params.exempt else ""
    return ClaimResult(
        claim_id=claim_id, kind="not_degenerate", family="guard",
        statement=f"{params.metric} varies across pairs for every method{exempt}",
        passed=passed, statistic="methods with a constant metric", observed=len(constant),
        comparison="==", threshold=0.0, n=checked, interval_low=None, interval_high=None,
        interval_method=None, alpha=next(iter(run.summary.methods.values())).fr_itt.alpha,
        detail=("constant: " + "; ".join(constant)) if constant else
        f"{checked} methods checked, none constant{exempt}")


def check_distinct_maps(claim_id: str, params: DistinctParams, run: RunArtefacts) -> ClaimResult:
    """Differently named methods give different maps: for every pair of methods, at least
    one shared pair has maps with different digests."""
    digests: dict[str, dict[str, str]] = {}
    for method in sorted(set(run.summary.methods) - set(params.exempt)):
        digests[method] = {r.pair_id: r.map_sha256 for r in run.records_of(method)
                           if r.map_sha256 is not None}
    duplicates: list[str] = []
    compared = 0
    for a, b in combinations(sorted(digests), 2):
        shared = set(digests[a]) & set(digests[b])
        if not shared:
            continue
        compared += 1
        if all(digests[a][p] == digests[b][p] for p in shared):
            duplicates.append(f"{a} == {b} on all {len(shared)} shared pairs")
    return ClaimResult(
        claim_id=claim_id, kind="distinct_maps", family="guard",
        statement="no two differently named methods give identical maps",
        passed=not duplicates, statistic="identical method pairs", observed=len(duplicates),
        comparison="==", threshold=0.0, n=compared, interval_low=None, interval_high=None,
        interval_method=None, alpha=next(iter(run.summary.methods.values())).fr_itt.alpha,
        detail="; ".join(duplicates) if duplicates else f"{compared} method pairs all differ")
