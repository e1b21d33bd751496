"""Artefact-control claims (Rong et al., ROAD, ICML 2022): verdicts are not explained by the
removed region's shape, and a blurry map that knows nothing stays at chance — under every fill
strategy the protocol's ``[artefacts]`` stage ran (:mod:`faceattr.validity.artefacts`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader
from faceattr.falsification.counterfactuals import FILL_STRATEGIES
from faceattr.stats.proportions import ProportionInterval, ProportionMethod, proportion_interval
from faceattr.validity.artefacts import ArtefactResult

__all__ = ["BlurControlParams", "ShapeControlParams", "check_blur_control",
           "check_shape_control", "read_blur_control", "read_shape_control"]


@dataclass(frozen=True, slots=True)
class ShapeControlParams:
    """``shape_control``: the share of ``method``'s passes (under ``verdict``) that its moved
    shape also passes is at most ``max_share`` under every fill (judged on ``on``)."""

    method: str
    max_share: float
    on: str
    verdict: str
    fills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BlurControlParams:
    """``blur_control``: ``method`` (a smoothed random map) has an FR interval containing
    ``chance_rate`` under every fill."""

    method: str
    chance_rate: float
    fills: tuple[str, ...]


def _fills(reader: TableReader) -> tuple[str, ...]:
    return tuple(reader.texts("fills", default=[], allowed=list(FILL_STRATEGIES)))


def read_shape_control(reader: TableReader, method_ids: set[str]) -> ShapeControlParams:
    """Parse ``method``, ``max_share``, ``verdict``, ``on`` (estimate | ci_high) and optional
    ``fills``."""
    params = ShapeControlParams(
        method=reader.text("method", allowed=sorted(method_ids)),
        max_share=reader.fraction("max_share"),
        on=reader.text("on", default="ci_high", allowed=["estimate", "ci_high"]),
        verdict=reader.text("verdict", allowed=["simple", "theorem"]),
        fills=_fills(reader))
    reader.finish()
    return params


def read_blur_control(reader: TableReader, method_ids: set[str]) -> BlurControlParams:
    """Parse ``method``, ``chance_rate`` (default 0.5) and optional ``fills``."""
    params = BlurControlParams(method=reader.text("method", allowed=sorted(method_ids)),
                               chance_rate=reader.fraction("chance_rate", default=0.5),
                               fills=_fills(reader))
    reader.finish()
    return params


def _missing(claim_id: str, kind: str, statement: str, threshold: float, comparison: str,
             alpha: float, reason: str) -> ClaimResult:
    return ClaimResult(claim_id=claim_id, kind=kind, family="artefact", statement=statement,
                       passed=False, statistic="-", observed=0.0, comparison=comparison,
                       threshold=threshold, n=0, interval_low=None, interval_high=None,
                       interval_method=None, alpha=alpha, detail=f"undefined: {reason}")


def _result_or_reason(run: RunArtefacts, method: str,
                      fills: tuple[str, ...]) -> tuple[ArtefactResult, tuple[str, ...]] | str:
    result = run.artefacts
    if result is None:
        return "the run has no artefacts.json: declare an [artefacts] stage in the protocol"
    wanted = fills or result.fills
    missing = [f for f in wanted if f not in result.fills]
    if missing:
        return f"the [artefacts] stage did not run fill(s) {', '.join(missing)}"
    if method not in {c.method for c in result.cells}:
        return f"the [artefacts] stage did not run method {method!r}"
    return result, wanted


def check_shape_control(claim_id: str, params: ShapeControlParams,
                        run: RunArtefacts) -> ClaimResult:
    """Judge the worst fill's share of passes explainable by shape alone."""
    fills_text = ", ".join(params.fills) if params.fills else "every fill"
    statement = (f"{params.method}: at most {params.max_share:g} of its {params.verdict}-verdict "
                 f"passes are also passed by S_high's shape moved elsewhere ({params.on}; "
                 f"{fills_text})")
    alpha = run.summary.methods[params.method].fr_itt.alpha
    found = _result_or_reason(run, params.method, params.fills)
    if isinstance(found, str):
        return _missing(claim_id, "shape_control", statement, params.max_share, "<=", alpha,
                        found)
    result, fills = found
    judged: list[tuple[float, str, ProportionInterval]] = []
    for fill in fills:
        control = result.cell(params.method, fill).shape_control(params.verdict)
        if control.explained is None:
            return _missing(claim_id, "shape_control", statement, params.max_share, "<=",
                            alpha, f"fill {fill}: {control.explained_undefined_reason}")
        explained = control.explained
        judged.append((explained.high if params.on == "ci_high" else explained.estimate, fill,
                       explained))
    worst, fill, interval = max(judged)
    passed = worst <= params.max_share
    return ClaimResult(
        claim_id=claim_id, kind="shape_control", family="artefact", statement=statement,
        passed=passed, statistic=f"explained-by-shape share ({params.on}, worst fill: {fill})",
        observed=worst, comparison="<=", threshold=params.max_share, n=interval.n,
        interval_low=interval.low, interval_high=interval.high,
        interval_method=interval.method, alpha=interval.alpha,
        detail="; ".join(f"{f}: {i.count}/{i.n} = {i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"
                         for _, f, i in judged))


def check_blur_control(claim_id: str, params: BlurControlParams,
                       run: RunArtefacts) -> ClaimResult:
    """Judge that every fill's FR interval of the blurred random map contains chance.

    The fills test the same maps on the same pairs, so a control that is exactly at chance
    would still miss under some fill far more often than ``alpha``: each fill's interval is at
    level ``1 - alpha / m`` over the ``m`` fills (Bonferroni 1936), so the claim's false-failure
    rate is at most ``alpha``.
    """
    statement = (f"{params.method}: a blurred random map is falsified at chance "
                 f"({params.chance_rate:g}) under every fill (Bonferroni over fills)")
    alpha = run.summary.methods[params.method].fr_itt.alpha
    found = _result_or_reason(run, params.method, params.fills)
    if isinstance(found, str):
        return _missing(claim_id, "blur_control", statement, params.chance_rate, "contains",
                        alpha, found)
    result, fills = found
    cells = [result.cell(params.method, fill) for fill in fills]
    per_fill = alpha / len(cells)
    intervals = [proportion_interval(c.fr.count, c.fr.n,
                                     method=cast(ProportionMethod, c.fr.method), alpha=per_fill)
                 for c in cells]
    worst, fr = max(zip(cells, intervals, strict=True),
                    key=lambda ci: abs(ci[1].estimate - params.chance_rate))
    passed = all(i.low <= params.chance_rate <= i.high for i in intervals)
    return ClaimResult(
        claim_id=claim_id, kind="blur_control", family="artefact", statement=statement,
        passed=passed, statistic=f"FR (ITT, furthest fill: {worst.fill})",
        observed=fr.estimate, comparison="contains", threshold=params.chance_rate,
        n=worst.n_pairs, interval_low=fr.low, interval_high=fr.high,
        interval_method=f"{fr.method}, Bonferroni over {len(cells)} fills", alpha=per_fill,
        detail="; ".join(f"{c.fill}: FR {i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"
                         for c, i in zip(cells, intervals, strict=True)))
