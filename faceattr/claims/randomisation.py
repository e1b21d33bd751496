"""Model-parameter randomisation claims (Adebayo et al. 2018): maps must depend on the model.

A method passes when its maps on the randomised model are dissimilar from its maps on the
trained model: after the full top-down cascade (every weight layer re-initialised), or on
average over the independent single-layer randomisations, the mean similarity over pairs must
be at most ``max_similarity``. A method known to be insensitive (for instance a control that
ignores the model) is declared ``expected_insensitive`` with a ``reason``: the claim then passes
only if the method indeed fails the threshold, with strict expected-failure semantics — an
unexpected pass fails the claim, as ``xfail_strict`` does in pytest and sklearn's
``_xfail_checks`` do for estimator checks.

References
----------
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.

A. Hedström et al., "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023 (MPRT variants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import ProtocolError, TableReader
from faceattr.randomisation.similarity import METRICS, Metric
from faceattr.randomisation.stage import ORDERS, MethodCurves, Order, RandomisationResult
from faceattr.stats.means import mean_interval

__all__ = ["RandomisationParams", "check_randomisation", "read_randomisation"]

_FAMILY = "randomisation"
_KIND = "randomisation"


@dataclass(frozen=True, slots=True)
class RandomisationParams:
    """``randomisation``: a method's maps change when the model's parameters are randomised.

    Attributes
    ----------
    method : str
        A protocol method id.
    order : {"cascading", "independent"}
        Judge the similarity after the full cascade, or the mean over the independent steps.
    metric : {"spearman_abs", "ssim", "topk"}
        The map similarity.
    max_similarity : float
        Largest acceptable mean similarity: in [-1, 1] for ``spearman_abs`` and ``ssim``, a
        fraction in [0, 1] for ``topk``.
    expected_insensitive : bool
        The method is expected to fail the threshold (strict expected failure).
    reason : str or None
        Why it is expected to fail; required exactly when ``expected_insensitive``.
    """

    method: str
    order: Order
    metric: Metric
    max_similarity: float
    expected_insensitive: bool
    reason: str | None


def read_randomisation(reader: TableReader, method_ids: set[str]) -> RandomisationParams:
    """Parse ``method``, ``order``, ``metric``, ``max_similarity``, ``expected_insensitive`` and
    ``reason``."""
    method = reader.text("method", allowed=sorted(method_ids))
    order = reader.text("order", allowed=list(ORDERS))
    metric = reader.text("metric", allowed=list(METRICS))
    if metric == "topk":
        max_similarity = reader.fraction("max_similarity")
    else:
        max_similarity = reader.number("max_similarity", minimum=-1.0, maximum=1.0)
    expected_insensitive = reader.boolean("expected_insensitive", default=False)
    reason = reader.text("reason", default="").strip()
    reader.finish()
    if expected_insensitive and not reason:
        raise ProtocolError(f"{reader.where}: expected_insensitive = true needs a reason "
                            "(why the method is expected to fail the randomisation test)")
    if reason and not expected_insensitive:
        raise ProtocolError(f"{reader.where}: reason is only allowed with "
                            "expected_insensitive = true")
    return RandomisationParams(method=method, order=order, metric=metric,  # type: ignore[arg-type]
                               max_similarity=max_similarity,
                               expected_insensitive=expected_insensitive,
                               reason=reason or None)


def _statement(params: RandomisationParams) -> str:
    where = ("after randomising every layer (top-down cascade)" if params.order == "cascading"
             else "averaged over the independent single-layer randomisations")
    text = (f"{params.method}: mean {params.metric} similarity of its maps to the trained "
            f"model's maps {where} <= {params.max_similarity:g}")
    if params.expected_insensitive:
        text += f" — expected to fail (insensitive: {params.reason})"
    return text


def _per_pair(curves: MethodCurves, order: Order, metric: Metric) -> list[float]:
    # one value per pair: the similarity after the full cascade, or its mean over the layers
    if order == "cascading":
        return list(curves.cascading[-1].similarity(metric).per_pair)
    per_layer = np.array([step.similarity(metric).per_pair for step in curves.independent])
    return [float(v) for v in per_layer.mean(axis=0)]


def check_randomisation(claim_id: str, params: RandomisationParams,
                        run: RunArtefacts) -> ClaimResult:
    """Judge a randomisation claim on the run's randomisation stage.

    The statistic is the mean over pairs of the per-pair similarity (after the full cascade, or
    averaged over the independent steps — equal to the mean over layers of the per-layer
    means); a Student t interval over pairs is reported beside it. The claim fails, whatever
    the threshold, when the run has no randomisation result, the stage did not cover the
    method, the method raised, or every one of its maps on the trained model is constant; a
    pair whose trained-model map is constant counts with similarity 1 (untestable is a failed
    pair, not a dropped one).
    """
    summary = run.method(params.method)
    alpha = summary.fr_itt.alpha
    statement = _statement(params)
    statistic = (f"{params.metric} ({params.order}"
                 f"{', full cascade' if params.order == 'cascading' else ', mean over layers'})")

    def failed(detail: str, n: int = 0) -> ClaimResult:
        return ClaimResult(claim_id=claim_id, kind=_KIND, family=_FAMILY, statement=statement,
                           passed=False, statistic=statistic, observed=0.0, comparison="<=",
                           threshold=params.max_similarity, n=n, interval_low=None,
                           interval_high=None, interval_method=None, alpha=alpha,
                           detail=detail)

    result = run.randomisation
    if result is None:
        return failed("undefined: the run has no randomisation result (randomisation.json)")
    if not isinstance(result, RandomisationResult):
        raise TypeError(f"run.randomisation is a {type(result).__name__}, not a "
                        "RandomisationResult")
    if params.method not in {m.method_id for m in result.methods}:
        return failed(f"undefined: the randomisation stage did not run {params.method}")
    curves = result.method(params.method)
    if curves.error is not None:
        return failed(f"error: {curves.error}")
    n_constant = sum(curves.original_constant)
    if n_constant == len(curves.original_constant):
        return failed(f"untestable: all {n_constant} maps on the trained model are constant",
                      n=result.n_pairs)
    # an untestable pair (constant map on the trained model) is not dropped: it counts with
    # the worst similarity, 1 (intention-to-treat)
    values = [1.0 if constant else value for value, constant in
              zip(_per_pair(curves, params.order, params.metric), curves.original_constant,
                  strict=True)]
    observed = float(np.mean(values))
    low: float | None = None
    high: float | None = None
    if len(values) >= 2:
        interval = mean_interval(values, method="t", alpha=alpha, rng=None, n_resamples=None)
        low, high = interval.low, interval.high
    meets = observed <= params.max_similarity
    steps = (f"after {curves.cascading[-1].n_layers_randomised} layers" if params.order ==
             "cascading" else f"over {len(curves.independent)} layers")
    numbers = (f"mean {params.metric} {steps} = {observed:.4f} "
               f"{'<=' if meets else '>'} {params.max_similarity:g} on {len(values)} pairs"
               + (f" ({n_constant} untestable counted as 1)" if n_constant else ""))
    if params.expected_insensitive:
        passed = not meets
        detail = (f"expected failure confirmed: {numbers}" if passed
                  else f"unexpected pass: {numbers}; the method is sensitive after all — "
                       "drop expected_insensitive")
    else:
        passed = meets
        detail = numbers
    return ClaimResult(claim_id=claim_id, kind=_KIND, family=_FAMILY, statement=statement,
                       passed=passed, statistic=statistic, observed=observed, comparison="<=",
                       threshold=params.max_similarity, n=len(values), interval_low=low,
                       interval_high=high, interval_method=None if low is None else "t",
                       alpha=alpha, detail=detail)
