"""Model-parameter randomisation claims (Adebayo et al. 2018): maps must depend on the model.

A method passes when its maps on the randomised model are dissimilar from its maps on the
trained model: after the full top-down cascade (every weight layer re-initialised) or after its
top ``n_layers`` layers, or on average over the independent single-layer randomisations, the mean
similarity over pairs must be at most ``max_similarity``.

A method known to be insensitive — a control that ignores the model, or Guided Backpropagation,
whose maps Adebayo et al. found to barely change when the top layers are randomised — is declared
``expected_insensitive`` with a ``reason`` and a ``min_similarity``: the claim then passes only if
the mean similarity stays at or above ``min_similarity``, so it fails when the method turns out
sensitive. (The older spelling, ``expected_insensitive`` with ``max_similarity``, is a strict
expected failure of the ordinary claim: it passes only if the similarity exceeds
``max_similarity``, as ``xfail_strict`` does in pytest.)

The repaired tests of Hedström et al. (2023) are judged by the same kind
(:mod:`faceattr.randomisation.repaired`): ``metric = "smprt"`` is the Spearman similarity of the
noise-smoothed maps after full randomisation (bounded like a similarity), and ``metric =
"emprt"`` the rise in the maps' complexity, ``H(after) / H(before)``: a sensitive method's maps
become more complex, ``ratio >= min_complexity_ratio``; an expected-insensitive one's do not,
``ratio <= max_complexity_ratio``.

References
----------
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.

A. Hedström, L. Weber, S. Lapuschkin, M. M.-C. Höhne, "Sanity Checks Revisited: An Exploration
to Repair the Model Parameter Randomisation Test", XAI in Action workshop, NeurIPS 2023.

A. Hedström et al., "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023 (MPRT variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import ProtocolError, TableReader
from faceattr.randomisation.similarity import METRICS, Metric
from faceattr.randomisation.stage import ORDERS, MethodCurves, Order, RandomisationResult
from faceattr.stats.means import mean_interval

__all__ = ["CLAIM_METRICS", "RandomisationParams", "check_randomisation", "read_randomisation"]

_FAMILY = "randomisation"
_KIND = "randomisation"

ClaimMetric = Metric | Literal["smprt", "emprt"]
CLAIM_METRICS: Final[tuple[str, ...]] = (*METRICS, "smprt", "emprt")
"""The classic similarities, sMPRT (a similarity) and eMPRT (a complexity ratio)."""

_MAX_RATIO: Final = 1000.0
"""Largest complexity-ratio bound accepted (an entropy ratio of real maps is a few units)."""


@dataclass(frozen=True, slots=True)
class RandomisationParams:
    """``randomisation``: a method's maps change when the model's parameters are randomised.

    Attributes
    ----------
    method : str
        A protocol method id.
    order : {"cascading", "independent"}
        Judge the similarity after the (full or partial) cascade, or the mean over the
        independent steps. ``smprt`` and ``emprt`` are judged after full randomisation
        (``"cascading"``) only.
    metric : {"spearman_abs", "ssim", "topk", "smprt", "emprt"}
        The map similarity, or a repaired test.
    max_similarity : float or None
        Largest acceptable mean similarity (in [-1, 1]; a fraction for ``topk``): the bound of an
        ordinary claim, or of a legacy strict expected failure.
    min_similarity : float or None
        Smallest acceptable mean similarity of an ``expected_insensitive`` claim.
    min_complexity_ratio, max_complexity_ratio : float or None
        ``emprt`` only: the bound of an ordinary and of an expected-insensitive claim.
    n_layers : int or None
        ``cascading`` classic metrics only: judge after the top ``n_layers`` layers are
        randomised (``None``: all of them).
    expected_insensitive : bool
        The method is expected to be insensitive to the model's parameters.
    reason : str or None
        Why; required exactly when ``expected_insensitive``.
    """

    method: str
    order: Order
    metric: ClaimMetric
    max_similarity: float | None
    expected_insensitive: bool
    reason: str | None
    min_similarity: float | None = None
    min_complexity_ratio: float | None = None
    max_complexity_ratio: float | None = None
    n_layers: int | None = None

    @property
    def comparison(self) -> str:
        """``"<="`` or ``">="``: how the observed value must compare with :attr:`bound`."""
        if self.metric == "emprt":
            return "<=" if self.expected_insensitive else ">="
        return ">=" if self.min_similarity is not None else "<="

    @property
    def bound(self) -> float:
        """The declared threshold the observed value is compared with."""
        for value in (self.min_similarity, self.max_similarity, self.min_complexity_ratio,
                      self.max_complexity_ratio):
            if value is not None:
                return value
        raise AssertionError("a randomisation claim always has a bound")  # pragma: no cover

    @property
    def default_id(self) -> str:
        """The claim's id when the protocol gives none."""
        where = self.order if self.n_layers is None else f"{self.order}@{self.n_layers}"
        if self.metric == "emprt":
            return f"randomisation:{self.method}:emprt{self.comparison}{self.bound:g}"
        if self.min_similarity is not None:
            return (f"randomisation:{self.method}:{where}:{self.metric}"
                    f">={self.min_similarity:g}")
        return f"randomisation:{self.method}:{where}:{self.metric}<={self.bound:g}"


def _similarity_bound(reader: TableReader, key: str, metric: str) -> float:
    if metric == "topk":
        return reader.fraction(key)
    return reader.number(key, minimum=-1.0, maximum=1.0)


def _declared(reader: TableReader, key: str) -> bool:
    # whether the protocol table has the key (a reader that records keys has an empty table)
    return key in reader._table


def read_randomisation(reader: TableReader, method_ids: set[str]) -> RandomisationParams:
    """Parse ``method``, ``order``, ``metric``, the bound, ``n_layers``,
    ``expected_insensitive`` and ``reason``.

    An ordinary claim has ``max_similarity`` (``emprt``: ``min_complexity_ratio``); an
    ``expected_insensitive`` one ``min_similarity`` (or the legacy ``max_similarity``;
    ``emprt``: ``max_complexity_ratio``).
    """
    method = reader.text("method", allowed=sorted(method_ids))
    order = reader.text("order", allowed=list(ORDERS))
    metric = reader.text("metric", allowed=list(CLAIM_METRICS))
    expected_insensitive = reader.boolean("expected_insensitive", default=False)
    reason = reader.text("reason", default="").strip()
    top_layers = reader.integer("n_layers", default=0, minimum=0)
    if top_layers and (metric not in METRICS or order != "cascading"):
        raise ProtocolError(f"{reader.where}: n_layers = {top_layers} applies only to a "
                            "cascading claim on a classic similarity (0: every layer)")
    bounds: dict[str, float | None] = {"max_similarity": None, "min_similarity": None,
                                       "min_complexity_ratio": None,
                                       "max_complexity_ratio": None}
    if metric == "emprt":
        key = "max_complexity_ratio" if expected_insensitive else "min_complexity_ratio"
        bounds[key] = reader.number(key, minimum=0.0, maximum=_MAX_RATIO)
    elif expected_insensitive and not _declared(reader, "max_similarity"):
        bounds["min_similarity"] = _similarity_bound(reader, "min_similarity", metric)
    else:
        bounds["max_similarity"] = _similarity_bound(reader, "max_similarity", metric)
    if metric in ("smprt", "emprt") and order != "cascading":
        raise ProtocolError(f"{reader.where}: metric = {metric!r} is judged after full "
                            "randomisation: order must be 'cascading'")
    reader.finish()
    if expected_insensitive and not reason:
        raise ProtocolError(f"{reader.where}: expected_insensitive = true needs a reason "
                            "(why the method is expected to fail the randomisation test)")
    if reason and not expected_insensitive:
        raise ProtocolError(f"{reader.where}: reason is only allowed with "
                            "expected_insensitive = true")
    return RandomisationParams(method=method, order=order, metric=metric,  # type: ignore[arg-type]
                               expected_insensitive=expected_insensitive,
                               reason=reason or None, n_layers=top_layers or None, **bounds)


def _where(params: RandomisationParams) -> str:
    if params.metric in ("smprt", "emprt"):
        return "after randomising every layer"
    if params.order == "cascading":
        if params.n_layers is not None:
            return f"after randomising the top {params.n_layers} layer(s) (top-down cascade)"
        return "after randomising every layer (top-down cascade)"
    return "averaged over the independent single-layer randomisations"


def _statement(params: RandomisationParams) -> str:
    if params.metric == "emprt":
        text = (f"{params.method}: mean eMPRT complexity ratio H(random) / H(trained) of its "
                f"maps {_where(params)} {params.comparison} {params.bound:g}")
        if params.expected_insensitive:
            text += f" — expected insensitive ({params.reason})"
        return text
    what = "sMPRT (smoothed-map Spearman)" if params.metric == "smprt" else params.metric
    text = (f"{params.method}: mean {what} similarity of its maps to the trained "
            f"model's maps {_where(params)} {params.comparison} {params.bound:g}")
    if params.expected_insensitive and params.min_similarity is not None:
        text += f" — expected insensitive ({params.reason})"
    elif params.expected_insensitive:
        text += f" — expected to fail (insensitive: {params.reason})"
    return text


def _per_pair(curves: MethodCurves, order: Order, metric: Metric,
              n_layers: int | None) -> list[float]:
    # one value per pair: the similarity after the (partial) cascade, or its mean over layers
    if order == "cascading":
        step = curves.cascading[-1 if n_layers is None else n_layers - 1]
        return list(step.similarity(metric).per_pair)
    per_layer = np.array([step.similarity(metric).per_pair for step in curves.independent])
    return [float(v) for v in per_layer.mean(axis=0)]


@dataclass(frozen=True, slots=True)
class _Values:
    """Per-pair values of the judged statistic, which pairs are untestable, and where."""

    values: list[float | None]
    untestable: list[bool]
    steps: str


def _values(params: RandomisationParams, result: RandomisationResult
            ) -> _Values | str:
    """The judged values, or the reason the claim is undefined / failed."""
    if params.metric in ("smprt", "emprt"):
        repaired = result.repaired
        if repaired is None or params.method not in repaired.settings.methods:
            return (f"undefined: the run has no sMPRT/eMPRT values for {params.method} "
                    "(declare it in [randomisation] repaired_methods)")
        entry = repaired.method(params.method)
        if entry.error is not None:
            return f"error: {entry.error}"
        steps = (f"after {entry.full.layers_randomised.__len__()} layers "
                 f"({repaired.settings.layer_order})")
        if params.metric == "smprt":
            return _Values(values=list(entry.full.per_pair),
                           untestable=list(entry.smoothed_constant), steps=steps)
        return _Values(values=list(entry.complexity_ratio),
                       untestable=[r is None for r in entry.complexity_ratio], steps=steps)
    if params.method not in {m.method_id for m in result.methods}:
        return f"undefined: the randomisation stage did not run {params.method}"
    curves = result.method(params.method)
    if curves.error is not None:
        return f"error: {curves.error}"
    if params.n_layers is not None and params.n_layers > len(curves.cascading):
        return (f"undefined: n_layers = {params.n_layers} but the cascade has "
                f"{len(curves.cascading)} layers")
    if params.order == "cascading":
        n = curves.cascading[-1 if params.n_layers is None else params.n_layers - 1]
        steps = f"after {n.n_layers_randomised} layers"
    else:
        steps = f"over {len(curves.independent)} layers"
    metric: Metric = params.metric  # type: ignore[assignment]
    return _Values(values=list(_per_pair(curves, params.order, metric, params.n_layers)),
                   untestable=list(curves.original_constant), steps=steps)


def _worst(params: RandomisationParams) -> float | None:
    # the value an untestable pair counts with: the worst for the claim's direction
    # (intention-to-treat); None: no finite worst, the claim fails on any untestable pair
    if params.metric == "emprt":
        return None if params.expected_insensitive else 0.0
    if params.comparison == ">=":
        return 0.0 if params.metric == "topk" else -1.0
    return 1.0


def check_randomisation(claim_id: str, params: RandomisationParams,
                        run: RunArtefacts) -> ClaimResult:
    """Judge a randomisation claim on the run's randomisation stage.

    The statistic is the mean over pairs of the per-pair value (the similarity after the full or
    partial cascade, or averaged over the independent steps — equal to the mean over layers of
    the per-layer means; the sMPRT similarity or the eMPRT complexity ratio after full
    randomisation); a Student t interval over pairs is reported beside it. The claim fails,
    whatever the threshold, when the run has no randomisation result, the stage did not cover
    the method, the method raised, or every one of its maps on the trained model is constant.
    An untestable pair (a constant map on the trained model) is not dropped: it counts with the
    worst value for the claim's direction (similarity 1 for a sensitivity claim, the lowest
    similarity for an expected-insensitive one, ratio 0 for an eMPRT sensitivity claim; an
    expected-insensitive eMPRT claim fails on any untestable pair, whose ratio is undefined).
    """
    summary = run.method(params.method)
    alpha = summary.fr_itt.alpha
    statement = _statement(params)
    comparison, bound = params.comparison, params.bound
    if params.metric == "emprt":
        statistic = "emprt complexity ratio (full randomisation)"
    elif params.metric == "smprt":
        statistic = "smprt (full randomisation)"
    else:
        statistic = (f"{params.metric} ({params.order}"
                     + (", mean over layers)" if params.order == "independent" else
                        ", full cascade)" if params.n_layers is None else
                        f", top {params.n_layers} layers)"))

    def failed(detail: str, n: int = 0) -> ClaimResult:
        return ClaimResult(claim_id=claim_id, kind=_KIND, family=_FAMILY, statement=statement,
                           passed=False, statistic=statistic, observed=0.0,
                           comparison=comparison, threshold=bound, n=n, interval_low=None,
                           interval_high=None, interval_method=None, alpha=alpha,
                           detail=detail)

    result = run.randomisation
    if result is None:
        return failed("undefined: the run has no randomisation result (randomisation.json)")
    if not isinstance(result, RandomisationResult):
        raise TypeError(f"run.randomisation is a {type(result).__name__}, not a "
                        "RandomisationResult")
    judged = _values(params, result)
    if isinstance(judged, str):
        return failed(judged)
    n_untestable = sum(judged.untestable)
    if n_untestable == len(judged.untestable):
        return failed(f"untestable: all {n_untestable} maps on the trained model are constant",
                      n=result.n_pairs)
    worst = _worst(params)
    if n_untestable and worst is None:
        return failed(f"untestable: {n_untestable} of {len(judged.untestable)} maps on the "
                      "trained model are constant (their complexity ratio is undefined); "
                      "insensitivity cannot be confirmed on them", n=result.n_pairs)
    values = [float(worst if bad else value)  # type: ignore[arg-type]
              for value, bad in zip(judged.values, judged.untestable, strict=True)]
    observed = float(np.mean(values))
    low: float | None = None
    high: float | None = None
    if len(values) >= 2:
        interval = mean_interval(values, method="t", alpha=alpha, rng=None, n_resamples=None)
        low, high = interval.low, interval.high
    meets = observed >= bound if comparison == ">=" else observed <= bound
    sign = comparison if meets else (">" if comparison == "<=" else "<")
    name = "eMPRT ratio" if params.metric == "emprt" else params.metric
    numbers = (f"mean {name} {judged.steps} = {observed:.4f} {sign} {bound:g} on "
               f"{len(values)} pairs"
               + (f" ({n_untestable} untestable counted as {worst:g})" if n_untestable else ""))
    legacy_xfail = (params.expected_insensitive and params.metric != "emprt"
                    and params.min_similarity is None)
    if legacy_xfail:
        passed = not meets
        detail = (f"expected failure confirmed: {numbers}" if passed
                  else f"unexpected pass: {numbers}; the method is sensitive after all — "
                       "drop expected_insensitive")
    else:
        passed = meets
        detail = numbers
        if params.expected_insensitive:
            detail = (f"insensitivity confirmed: {numbers}" if passed else
                      f"not insensitive: {numbers}; the method is sensitive after all — "
                      "drop expected_insensitive")
    return ClaimResult(claim_id=claim_id, kind=_KIND, family=_FAMILY, statement=statement,
                       passed=passed, statistic=statistic, observed=observed,
                       comparison=comparison, threshold=bound, n=len(values),
                       interval_low=low, interval_high=high,
                       interval_method=None if low is None else "t", alpha=alpha,
                       detail=detail)
