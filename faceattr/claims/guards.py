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
    """``distinct_maps``: no two methods give identical maps on every shared pair, nor the
    same regions (``S_high``, ``S_low``) on at least ``min_same_regions_share`` of the shared
    pairs where both have regions."""

    exempt: tuple[str, ...]
    min_same_regions_share: float


def read_not_degenerate(reader: TableReader, method_ids: set[str]) -> DegenerateParams:
    """Parse the metric and the exempted methods (with the reason they may be constant)."""
    metric = reader.text("metric", allowed=list(METRICS))
    exempt = tuple(reader.texts("exempt", default=[], allowed=sorted(method_ids)))
    reason = reader.text("reason", default="")
    reader.finish()
    if exempt and not reason:
        raise ValueError(f"{reader.where}: exempt methods need a reason")
    return DegenerateParams(metric=metric, exempt=exempt, reason=reason)


#: Default share of shared pairs with the same regions that makes two methods one map to the
#: test. Measured (synthetic levels 0-2, 40 pairs each): Grad-CAM and its positively rescaled
#: copy (biometric_grad_cam, inverse_variance = false) select the same regions on 39/39, 38/39
#: and 38/40 pairs (the others differ by a few near-tied boundary pixels, Jaccard >= 0.995);
#: the oracle and its 1-px shift, blur or noise blends, and Grad-CAM and the inverse-variance
#: Biometric Grad-CAM, on 0 pairs (Jaccard <= 0.81). Half is far from both.
MIN_SAME_REGIONS_SHARE = 0.5


def read_distinct(reader: TableReader, method_ids: set[str]) -> DistinctParams:
    """Parse the exempted methods and the same-regions share."""
    params = DistinctParams(
        exempt=tuple(reader.texts("exempt", default=[], allowed=sorted(method_ids))),
        min_same_regions_share=reader.fraction("min_same_regions_share",
                                               default=MIN_SAME_REGIONS_SHARE, open_low=True))
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


def _digests(run: RunArtefacts, method: str, field: str) -> dict[str, str]:
    return {r.pair_id: getattr(r, field) for r in run.records_of(method)
            if getattr(r, field) is not None}


def _same(a: dict[str, str], b: dict[str, str]) -> tuple[int, int]:
    """(pairs with equal digests, shared pairs)."""
    shared = set(a) & set(b)
    return sum(a[p] == b[p] for p in shared), len(shared)


def check_distinct_maps(claim_id: str, params: DistinctParams, run: RunArtefacts) -> ClaimResult:
    """Differently named methods give different maps, to the bytes and to the test.

    Two methods are one map when their map digests agree on every shared pair (a renamed
    copy), or when the digests of the regions the test perturbed (``regions_sha256``: the
    ``S_high`` and ``S_low`` pixel sets) agree on at least ``min_same_regions_share`` of the
    shared pairs where both have regions — a positively rescaled copy, whose bytes all differ
    but whose pixel ranking is the same, apart from a few near-ties that float rounding
    reorders at a region boundary (PITFALLS.md #20). Distinct maps share regions on almost no
    pair: the set of the top q of the pixels is a fine fingerprint.
    """
    methods = sorted(set(run.summary.methods) - set(params.exempt))
    maps = {m: _digests(run, m, "map_sha256") for m in methods}
    regions = {m: _digests(run, m, "regions_sha256") for m in methods}
    duplicates: list[str] = []
    compared = 0
    for a, b in combinations(methods, 2):
        same_maps, shared_maps = _same(maps[a], maps[b])
        same_regions, shared_regions = _same(regions[a], regions[b])
        if not shared_maps and not shared_regions:
            continue
        compared += 1
        if shared_maps and same_maps == shared_maps:
            duplicates.append(f"{a} == {b} on all {shared_maps} shared pairs")
        elif shared_regions and same_regions >= params.min_same_regions_share * shared_regions:
            duplicates.append(f"{a} ~ {b}: the same S_high and S_low on {same_regions}/"
                              f"{shared_regions} shared pairs (a rescaled copy: one map to the "
                              f"test; >= {params.min_same_regions_share:g} flags)")
    return ClaimResult(
        claim_id=claim_id, kind="distinct_maps", family="guard",
        statement=("no two differently named methods give identical maps, nor the same regions "
                   f"on >= {params.min_same_regions_share:g} of their shared pairs"),
        passed=not duplicates, statistic="identical method pairs", observed=len(duplicates),
        comparison="==", threshold=0.0, n=compared, interval_low=None, interval_high=None,
        interval_method=None, alpha=next(iter(run.summary.methods.values())).fr_itt.alpha,
        detail="; ".join(duplicates) if duplicates else f"{compared} method pairs all differ")
