"""Claims that a method explains the pair: target identity and partner sensitivity.

``target_identity`` bounds the share of a method's pairs whose explained scalar at the probe is
not the record's ``score_clean`` (status ``error:target_identity``,
:mod:`faceattr.experiments.target_identity`). ``partner_sensitivity`` judges the
partner-sensitivity stage (:mod:`faceattr.randomisation.partner`, the verification analogue
of Sixt et al.'s Random Logit test): the mean similarity of each genuine pair's maps against
its genuine and against a random impostor partner must be at most ``max_similarity``; a
method partner-free by design is declared ``expected_insensitive`` with a ``reason`` and a
``min_similarity`` its maps must reach (its maps are the same whatever the partner).

References
----------
L. Sixt, M. Granz, T. Landgraf, "When Explanations Lie: Why Many Modified BP Attributions
Fail", ICML 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import ProtocolError, TableReader
from faceattr.randomisation.partner import PartnerSensitivityResult
from faceattr.records import TARGET_IDENTITY_STATUS
from faceattr.stats.means import mean_interval
from faceattr.stats.proportions import proportion_interval

__all__ = ["PartnerSensitivityParams", "TargetIdentityParams", "check_partner_sensitivity",
           "check_target_identity", "read_partner_sensitivity", "read_target_identity"]

# --- target identity ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetIdentityParams:
    """``target_identity``: at most ``max_share`` of a method's pairs (``method`` omitted: of
    every method's pairs) explain another scalar than the verification score, judged on the
    observed share (default ``max_share = 0``: not one pair)."""

    method: str | None
    max_share: float


def read_target_identity(reader: TableReader, method_ids: set[str]) -> TargetIdentityParams:
    """Parse ``method`` (optional) and ``max_share`` (a fraction, default 0)."""
    method = reader.text("method", default="", allowed=["", *sorted(method_ids)])
    params = TargetIdentityParams(method=method or None,
                                  max_share=reader.fraction("max_share", default=0.0))
    reader.finish()
    return params


def check_target_identity(claim_id: str, params: TargetIdentityParams,
                          run: RunArtefacts) -> ClaimResult:
    """The share of ``error:target_identity`` pairs is at most ``max_share`` (observed share;
    the Wilson interval is reported beside it). Controls are exempt from the check, so their
    pairs never carry the status; they count in the denominator of an all-methods claim."""
    records = run.records if params.method is None else run.records_of(params.method)
    who = params.method or "every method"
    bad = [r for r in records if r.status == TARGET_IDENTITY_STATUS]
    alpha = next(iter(run.summary.methods.values())).fr_itt.alpha if params.method is None \
        else run.method(params.method).fr_itt.alpha
    interval = proportion_interval(len(bad), len(records), method="wilson", alpha=alpha)
    methods = sorted({r.method for r in bad})
    detail = f"{len(bad)}/{interval.n} pairs explain another scalar than s(x_a, x_b)"
    if bad:
        detail += f" (methods {', '.join(methods)}; first: {bad[0].pair_id}: " \
                  f"{bad[0].status_reason})"
    return ClaimResult(
        claim_id=claim_id, kind="target_identity", family="target",
        statement=f"{who}: the explained scalar at the probe equals the pair's verification "
                  f"score score_clean on all but a share <= {params.max_share:g} of pairs",
        passed=interval.estimate <= params.max_share,
        statistic="error:target_identity share (estimate)", observed=interval.estimate,
        comparison="<=", threshold=params.max_share, n=interval.n, interval_low=interval.low,
        interval_high=interval.high, interval_method="wilson", alpha=alpha, detail=detail)


# --- partner sensitivity --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartnerSensitivityParams:
    """``partner_sensitivity``: a method's maps change when the partner is a random impostor.

    Attributes
    ----------
    method : str
        A protocol method id.
    max_similarity : float or None
        Largest acceptable mean similarity of the genuine-partner and impostor-partner maps
        (a sensitive method); ``None`` exactly when ``expected_insensitive``.
    expected_insensitive : bool
        The method is partner-free by design (a control that ignores the partner).
    min_similarity : float or None
        Smallest mean similarity an insensitive method's maps must reach; ``None`` exactly
        when not ``expected_insensitive``.
    reason : str or None
        Why it is partner-free; required exactly when ``expected_insensitive``.
    """

    method: str
    max_similarity: float | None
    expected_insensitive: bool
    min_similarity: float | None
    reason: str | None


def read_partner_sensitivity(reader: TableReader,
                             method_ids: set[str]) -> PartnerSensitivityParams:
    """Parse ``method``, ``max_similarity`` or (``expected_insensitive = true``)
    ``min_similarity`` and ``reason``; bounds in [-1, 1] (the stage's metric decides the
    scale: a ``topk`` overlap is a fraction)."""
    method = reader.text("method", allowed=sorted(method_ids))
    insensitive = reader.boolean("expected_insensitive", default=False)
    if insensitive:
        bound = reader.number("min_similarity", minimum=-1.0, maximum=1.0)
        reason = reader.text("reason", default="").strip()
        reader.finish()
        if not reason:
            raise ProtocolError(f"{reader.where}: expected_insensitive = true needs a reason "
                                "(why the method's maps do not depend on the partner)")
        return PartnerSensitivityParams(method=method, max_similarity=None,
                                        expected_insensitive=True, min_similarity=bound,
                                        reason=reason)
    bound = reader.number("max_similarity", minimum=-1.0, maximum=1.0)
    reader.finish()
    return PartnerSensitivityParams(method=method, max_similarity=bound,
                                    expected_insensitive=False, min_similarity=None,
                                    reason=None)


def _statement(params: PartnerSensitivityParams, metric: str) -> str:
    if params.expected_insensitive:
        return (f"{params.method}: partner-free by design ({params.reason}): mean {metric} "
                f"similarity of its maps against the genuine and a random impostor partner "
                f">= {params.min_similarity:g}")
    return (f"{params.method}: its maps depend on the partner: mean {metric} similarity of "
            f"its maps against the genuine and a random impostor partner <= "
            f"{params.max_similarity:g}")


def check_partner_sensitivity(claim_id: str, params: PartnerSensitivityParams,
                              run: RunArtefacts) -> ClaimResult:
    """Judge a partner-sensitivity claim on the run's ``partner_sensitivity.json``.

    The statistic is the mean over the stage's pairs of the similarity of each pair's two maps
    (a Student t interval beside it). It fails, whatever the bound, when the run has no stage
    result, the stage did not cover the method, or the method raised. A pair whose map against
    the genuine partner is constant ranks no pixel: it counts against the claim (similarity 1
    for a sensitivity claim, the metric's lower bound for an insensitivity claim), and a method
    whose every such map is constant is untestable (fails).
    """
    alpha = run.method(params.method).fr_itt.alpha
    result = run.partner_sensitivity
    comparison = ">=" if params.expected_insensitive else "<="
    bound = params.min_similarity if params.expected_insensitive else params.max_similarity
    assert bound is not None
    metric = "similarity" if result is None else result.metric

    def outcome(passed: bool, observed: float, n: int, detail: str,
                low: float | None = None, high: float | None = None) -> ClaimResult:
        return ClaimResult(claim_id=claim_id, kind="partner_sensitivity", family="partner",
                           statement=_statement(params, metric), passed=passed,
                           statistic=f"mean {metric} (genuine vs impostor partner)",
                           observed=observed, comparison=comparison, threshold=bound, n=n,
                           interval_low=low, interval_high=high,
                           interval_method=None if low is None else "t", alpha=alpha,
                           detail=detail)

    if result is None:
        return outcome(False, 0.0, 0, "undefined: the run has no partner-sensitivity result "
                                      "(partner_sensitivity.json; declare [partner_sensitivity])")
    if not isinstance(result, PartnerSensitivityResult):
        raise TypeError(f"run.partner_sensitivity is a {type(result).__name__}, not a "
                        "PartnerSensitivityResult")
    if params.method not in {m.method_id for m in result.methods}:
        return outcome(False, 0.0, 0, f"undefined: the stage did not run {params.method}")
    entry = result.method(params.method)
    if entry.error is not None:
        return outcome(False, 0.0, 0, f"error: {entry.error}")
    n_constant = sum(entry.original_constant)
    if n_constant == len(entry.original_constant):
        return outcome(False, 0.0, result.n_pairs,
                       f"untestable: all {n_constant} maps against the genuine partner are "
                       "constant")
    worst = (0.0 if result.metric == "topk" else -1.0) if params.expected_insensitive else 1.0
    values = [worst if constant else value
              for value, constant in zip(entry.similarity, entry.original_constant, strict=True)]
    observed = float(np.mean(values))
    low: float | None = None
    high: float | None = None
    if len(values) >= 2:
        interval = mean_interval(values, method="t", alpha=alpha, rng=None, n_resamples=None)
        low, high = interval.low, interval.high
    passed = observed >= bound if params.expected_insensitive else observed <= bound
    detail = (f"mean {result.metric} = {observed:.4f} {'meets' if passed else 'misses'} "
              f"{comparison} {bound:g} on {len(values)} genuine pairs (min {min(values):.4f}, "
              f"max {max(values):.4f})"
              + (f"; {n_constant} constant maps counted as {worst:g}" if n_constant else ""))
    if not passed and not params.expected_insensitive:
        detail += ("; its maps barely depend on the partner: the method explains the probe "
                   "alone, not s(x_a, x_b)")
    return outcome(passed, observed, len(values), detail, low, high)
