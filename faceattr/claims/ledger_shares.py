"""Claims on the status ledger: uniformity (trivial maps), attrition (errors), target sanity.

Each bounds a share of pairs and is judged on the Wilson interval's upper bound, so a small
run cannot pass by luck (PITFALLS.md #3, #4, #5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader
from faceattr.records import PairRecord, is_error_status
from faceattr.stats.proportions import proportion_interval

__all__ = ["ErrorBudget", "ShareParams", "check_attrition", "check_error_budget",
           "check_target_sanity", "check_uniformity", "implicit_error_budgets",
           "read_error_budget", "read_share"]


@dataclass(frozen=True, slots=True)
class ShareParams:
    """A method and the largest acceptable share of its pairs in a status, judged on the
    Wilson upper bound (``on = "ci_high"``, the default) or on the observed share
    (``on = "estimate"``, e.g. ``max_share = 0``: not a single pair may fail)."""

    method: str
    max_share: float
    on: str


def read_share(reader: TableReader, method_ids: set[str]) -> ShareParams:
    """Parse ``method``, ``max_share`` (a fraction) and ``on``."""
    params = ShareParams(method=reader.text("method", allowed=sorted(method_ids)),
                         max_share=reader.fraction("max_share"),
                         on=reader.text("on", default="ci_high",
                                        allowed=["ci_high", "estimate"]))
    reader.finish()
    return params


def _share_claim(claim_id: str, kind: str, family: str, params: ShareParams,
                 run: RunArtefacts, what: str, hit: Callable[[PairRecord], bool],
                 ) -> ClaimResult:
    records = run.records_of(params.method)
    count = sum(hit(r) for r in records)
    alpha = run.method(params.method).fr_itt.alpha
    interval = proportion_interval(count, len(records), method="wilson", alpha=alpha)
    observed = interval.high if params.on == "ci_high" else interval.estimate
    judged_on = "the Wilson upper bound" if params.on == "ci_high" else "the observed share"
    return ClaimResult(
        claim_id=claim_id, kind=kind, family=family,
        statement=f"{params.method}: share of {what} pairs <= {params.max_share:g} (judged on "
                  f"{judged_on})",
        passed=observed <= params.max_share, statistic=f"{what} share ({params.on})",
        observed=observed,
        comparison="<=", threshold=params.max_share, n=interval.n, interval_low=interval.low,
        interval_high=interval.high, interval_method="wilson", alpha=alpha,
        detail=f"{count}/{interval.n} {what} pairs; upper bound {interval.high:.4f}")


def check_uniformity(claim_id: str, params: ShareParams, run: RunArtefacts) -> ClaimResult:
    """Uniformity: few of the method's maps are trivial (cannot rank pixels) — a uniform-map
    epidemic was the research code's 84% Grad-CAM loss (PITFALLS.md #4)."""
    return _share_claim(claim_id, "uniformity", "uniformity", params, run, "trivial",
                        lambda r: r.status == "trivial")


def check_attrition(claim_id: str, params: ShareParams, run: RunArtefacts) -> ClaimResult:
    """Attrition: few pairs end in an error status (errors are counted, never dropped)."""
    return _share_claim(claim_id, "attrition", "attrition", params, run, "error",
                        lambda r: is_error_status(r.status))


def check_target_sanity(claim_id: str, params: ShareParams, run: RunArtefacts) -> ClaimResult:
    """Target sanity: the explained scalar varies with the probe on (almost) every pair — the
    research code explained the norm of a unit vector (PITFALLS.md #5)."""
    return _share_claim(claim_id, "target_sanity", "target", params, run, "error:target",
                        lambda r: r.status == "error:target")


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """A method and how many of its pairs may end in an ``error:*`` status."""

    method: str
    max_errors: int


def read_error_budget(reader: TableReader, method_ids: set[str]) -> ErrorBudget:
    """Parse ``method`` and ``max_errors`` (a count >= 0)."""
    params = ErrorBudget(method=reader.text("method", allowed=sorted(method_ids)),
                         max_errors=reader.integer("max_errors", minimum=0))
    reader.finish()
    return params


def check_error_budget(claim_id: str, params: ErrorBudget, run: RunArtefacts) -> ClaimResult:
    """Error budget: at most ``max_errors`` of the method's pairs are ``error:*``.

    Every method of a protocol has one: declared, or implicitly ``max_errors = 0`` unless the
    protocol declares an ``attrition`` claim (a bound on the error share) for it — an error on
    any pair fails the gate unless the protocol says how many errors the method may have
    (PITFALLS.md #3: errors are counted and gated, never dropped).
    """
    records = run.records_of(params.method)
    errors = [r for r in records if is_error_status(r.status)]
    kinds = sorted({r.status for r in errors})
    return ClaimResult(
        claim_id=claim_id, kind="error_budget", family="attrition",
        statement=f"{params.method}: at most {params.max_errors} pairs end in an error status",
        passed=len(errors) <= params.max_errors, statistic="error pairs (count)",
        observed=float(len(errors)), comparison="<=", threshold=float(params.max_errors),
        n=len(records), interval_low=None, interval_high=None, interval_method=None,
        alpha=run.method(params.method).fr_itt.alpha,
        detail=f"{len(errors)}/{len(records)} error pairs" +
               (f" ({', '.join(kinds)}; first: {errors[0].pair_id}: {errors[0].status_reason})"
                if errors else ""))


def implicit_error_budgets(method_ids: list[str],
                           declared: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """``(claim id, method, 0)`` for each method without a declared ``error_budget`` or
    ``attrition`` claim; ``declared`` is the protocol's (kind, method) pairs."""
    covered = {m for kind, m in declared if kind in ("error_budget", "attrition")}
    return [(f"errors:{m}:n_error<=0", m, 0) for m in sorted(method_ids) if m not in covered]
