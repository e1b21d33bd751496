"""Control claims: the known answers that validate the falsification test in every run.

An oracle map must rarely be falsified, its inverse almost always, a random map at chance,
and a constant map is untestable (every pair trivial). Together they pin the sign
convention (PITFALLS.md #13) and show that trivial maps are counted, not dropped
(PITFALLS.md #4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faceattr.claims.base import ClaimResult, RunArtefacts, compare
from faceattr.config import TableReader
from faceattr.runfolder.summary import MethodSummary
from faceattr.stats.proportions import ProportionInterval

__all__ = ["AllTrivialParams", "FrBoundParams", "FrChanceParams", "check_all_trivial",
           "check_fr_at_least", "check_fr_at_most", "check_fr_chance"]

Bound = Literal["estimate", "ci_low", "ci_high"]
Estimand = Literal["itt", "valid"]


@dataclass(frozen=True, slots=True)
class FrBoundParams:
    """``fr_at_most`` / ``fr_at_least``: a method's FR against a threshold.

    ``on`` picks the number judged: the point estimate or an interval bound (``ci_high``
    for an upper limit judged conservatively, ``ci_low`` for a lower limit).
    """

    method: str
    threshold: float
    on: Bound
    estimand: Estimand


@dataclass(frozen=True, slots=True)
class FrChanceParams:
    """``fr_chance``: the FR's interval contains the chance rate."""

    method: str
    chance_rate: float
    estimand: Estimand


@dataclass(frozen=True, slots=True)
class AllTrivialParams:
    """``all_trivial``: every pair of the method is trivial."""

    method: str


def read_fr_bound(reader: TableReader, method_ids: set[str], allowed_on: list[str]
                  ) -> FrBoundParams:
    """Parse ``fr_at_most`` / ``fr_at_least`` parameters."""
    params = FrBoundParams(method=reader.text("method", allowed=sorted(method_ids)),
                           threshold=reader.fraction("threshold"),
                           on=reader.text("on", default="estimate", allowed=allowed_on),  # type: ignore[arg-type]
                           estimand=reader.text("estimand", default="itt",  # type: ignore[arg-type]
                                                allowed=["itt", "valid"]))
    reader.finish()
    return params


def read_fr_chance(reader: TableReader, method_ids: set[str]) -> FrChanceParams:
    """Parse ``fr_chance`` parameters."""
    params = FrChanceParams(method=reader.text("method", allowed=sorted(method_ids)),
                            chance_rate=reader.fraction("chance_rate", default=0.5),
                            estimand=reader.text("estimand", default="itt",  # type: ignore[arg-type]
                                                 allowed=["itt", "valid"]))
    reader.finish()
    return params


def read_all_trivial(reader: TableReader, method_ids: set[str]) -> AllTrivialParams:
    """Parse ``all_trivial`` parameters."""
    params = AllTrivialParams(method=reader.text("method", allowed=sorted(method_ids)))
    reader.finish()
    return params


def _fr(summary: MethodSummary, estimand: Estimand) -> ProportionInterval | None:
    return summary.fr_itt if estimand == "itt" else summary.fr_valid


def _pick(interval: ProportionInterval, on: Bound) -> float:
    return {"estimate": interval.estimate, "ci_low": interval.low, "ci_high": interval.high}[on]


def _fr_bound(claim_id: str, kind: str, params: FrBoundParams, run: RunArtefacts,
              comparison: Literal["<=", ">="]) -> ClaimResult:
    summary = run.method(params.method)
    interval = _fr(summary, params.estimand)
    label = f"FR ({params.estimand}, {params.on})"
    statement = (f"{params.method}: falsification rate {comparison} {params.threshold:g} "
                 f"(judged on the {params.on} of the {params.estimand} FR)")
    if interval is None:
        return ClaimResult(claim_id=claim_id, kind=kind, family="control", statement=statement,
                           passed=False, statistic=label, observed=0.0, comparison=comparison,
                           threshold=params.threshold, n=0, interval_low=None,
                           interval_high=None, interval_method=None, alpha=run_alpha(summary),
                           detail=f"undefined: {summary.fr_valid_undefined_reason}")
    observed = _pick(interval, params.on)
    passed = compare(observed, comparison, params.threshold)
    return ClaimResult(claim_id=claim_id, kind=kind, family="control", statement=statement,
                       passed=passed, statistic=label, observed=observed, comparison=comparison,
                       threshold=params.threshold, n=interval.n, interval_low=interval.low,
                       interval_high=interval.high, interval_method=interval.method,
                       alpha=interval.alpha,
                       detail=f"{interval.count}/{interval.n} pairs falsified; {label} = "
                              f"{observed:.4f} {comparison} {params.threshold:g} is {passed}")


def run_alpha(summary: MethodSummary) -> float:
    """The alpha the run's intervals were computed at."""
    return summary.fr_itt.alpha


def check_fr_at_most(claim_id: str, params: FrBoundParams, run: RunArtefacts) -> ClaimResult:
    """Positive control: the method (e.g. the oracle) is rarely falsified."""
    return _fr_bound(claim_id, "fr_at_most", params, run, "<=")


def check_fr_at_least(claim_id: str, params: FrBoundParams, run: RunArtefacts) -> ClaimResult:
    """Negative control: the method (e.g. the inverted oracle) is almost always falsified."""
    return _fr_bound(claim_id, "fr_at_least", params, run, ">=")


def check_fr_chance(claim_id: str, params: FrChanceParams, run: RunArtefacts) -> ClaimResult:
    """Chance control: a map that ignores the model is falsified at the chance rate — its FR
    interval contains ``chance_rate`` (0.5 for the simple verdict with area-matched regions,
    where S_high and S_low are exchangeable)."""
    summary = run.method(params.method)
    interval = _fr(summary, params.estimand)
    statement = (f"{params.method}: the {params.estimand} FR interval contains the chance "
                 f"rate {params.chance_rate:g}")
    if interval is None:
        return ClaimResult(claim_id=claim_id, kind="fr_chance", family="control",
                           statement=statement, passed=False, statistic="FR interval",
                           observed=0.0, comparison="contains", threshold=params.chance_rate,
                           n=0, interval_low=None, interval_high=None, interval_method=None,
                           alpha=run_alpha(summary),
                           detail=f"undefined: {summary.fr_valid_undefined_reason}")
    passed = interval.low <= params.chance_rate <= interval.high
    return ClaimResult(claim_id=claim_id, kind="fr_chance", family="control",
                       statement=statement, passed=passed, statistic=f"FR ({params.estimand})",
                       observed=interval.estimate, comparison="contains",
                       threshold=params.chance_rate, n=interval.n, interval_low=interval.low,
                       interval_high=interval.high, interval_method=interval.method,
                       alpha=interval.alpha,
                       detail=f"FR {interval.estimate:.4f} [{interval.low:.4f}, "
                              f"{interval.high:.4f}] {'contains' if passed else 'excludes'} "
                              f"{params.chance_rate:g}")


def check_all_trivial(claim_id: str, params: AllTrivialParams, run: RunArtefacts) -> ClaimResult:
    """Untestable control: a constant map yields a trivial status on every pair (and those
    pairs count as falsified, not dropped)."""
    summary = run.method(params.method)
    share = summary.n_trivial / summary.n_pairs
    passed = summary.n_trivial == summary.n_pairs and summary.fr_itt.count == summary.n_pairs
    return ClaimResult(claim_id=claim_id, kind="all_trivial", family="control",
                       statement=f"{params.method}: every pair is trivial (untestable map)",
                       passed=passed, statistic="trivial share", observed=share,
                       comparison="==", threshold=1.0, n=summary.n_pairs, interval_low=None,
                       interval_high=None, interval_method=None, alpha=run_alpha(summary),
                       detail=f"{summary.n_trivial}/{summary.n_pairs} trivial, "
                              f"{summary.n_valid} valid, {summary.n_error} error; "
                              f"{summary.fr_itt.count} counted falsified")
