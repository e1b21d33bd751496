"""Stratum effects: "method M fails more (or less) often in stratum S of covariate C", or "no
effect beyond a margin there".

Judged on the run's stratified analysis (``strata.json``, :mod:`faceattr.stats.strata`):

- ``expect = "higher"`` / ``"lower"``: the stratum's contrast against the rest is significant
  after Holm's correction over every contrast of the analysis (Fisher's exact test), in the
  declared direction. With ``exclusive = true`` no other stratum of the method is flagged for
  the outcome (the complement of a two-stratum covariate is the same finding and is allowed);
- ``expect = "none"``: the absence of an effect is *shown*, never read from a non-significant
  test (PITFALLS.md #11): a TOST of ``rate(stratum) - rate(rest)`` within ``+- margin``
  (Farrington-Manning score tests, Schuirmann 1987) at the analysis' alpha.

References
----------
.. [1] D. J. Schuirmann, J. Pharmacokinet. Biopharm. 15(6):657-680, 1987.
.. [2] S. Holm, Scand. J. Statist. 6(2):65-70, 1979.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader
from faceattr.data.covariates import COVARIATES
from faceattr.stats.equivalence import tost_unpaired_counts
from faceattr.stats.strata import Contrast, Heterogeneity, StrataResult

__all__ = ["StratumEffectParams", "check_stratum_effect", "read_stratum_effect"]


@dataclass(frozen=True, slots=True)
class StratumEffectParams:
    """``stratum_effect``: the declared effect of one stratum on one method's outcome."""

    method: str
    covariate: str
    stratum: str
    expect: str  # "higher" | "lower" | "none"
    outcome: str
    margin: float | None
    exclusive: bool


def read_stratum_effect(reader: TableReader, method_ids: set[str]) -> StratumEffectParams:
    """Parse the method, covariate, stratum, expected effect (a margin for ``none``)."""
    params = StratumEffectParams(
        method=reader.text("method", allowed=sorted(method_ids)),
        covariate=reader.text("covariate", allowed=sorted(COVARIATES)),
        stratum=reader.text("stratum"),
        expect=reader.text("expect", allowed=["higher", "lower", "none"]),
        outcome=reader.text("outcome", default="falsified", allowed=["falsified", "trivial"]),
        margin=reader.fraction("margin", default=0.0, maximum=0.5) or None,
        exclusive=reader.boolean("exclusive", default=False))
    reader.finish()
    if (params.expect == "none") != (params.margin is not None):
        raise ValueError(f"{reader.where}: expect = \"none\" needs an equivalence margin "
                         "(margin = 0.1, a fraction), and only it does")
    if params.expect == "none" and params.exclusive:
        raise ValueError(f"{reader.where}: exclusive applies to an expected effect")
    return params


def _fail(claim_id: str, statement: str, alpha: float, detail: str) -> ClaimResult:
    return ClaimResult(claim_id=claim_id, kind="stratum_effect", family="strata",
                       statement=statement, passed=False, statistic="stratum - rest",
                       observed=0.0, comparison="<=", threshold=0.0, n=0, interval_low=None,
                       interval_high=None, interval_method=None, alpha=alpha, detail=detail)


def _statement(p: StratumEffectParams) -> str:
    what = "falsified" if p.outcome == "falsified" else "trivial"
    if p.expect == "none":
        return (f"{p.method}: the {what} rate in {p.covariate} = {p.stratum} differs from the "
                f"rest by less than {p.margin:g} (TOST)")
    more = "more" if p.expect == "higher" else "less"
    only = "; no other stratum is flagged" if p.exclusive else ""
    return (f"{p.method} is {what} {more} often in {p.covariate} = {p.stratum} than in the "
            f"rest (Fisher exact, Holm over the analysis){only}")


def _heterogeneity(strata: StrataResult, p: StratumEffectParams) -> Heterogeneity:
    for h in strata.analysis.heterogeneity:
        if (h.outcome, h.method, h.covariate) == (p.outcome, p.method, p.covariate):
            return h
    raise ValueError(f"strata.json has no {p.outcome} analysis of {p.method} over "
                     f"{p.covariate}; declare both in [strata]")


def _contrast(strata: StrataResult, p: StratumEffectParams) -> tuple[Contrast, int] | None:
    """The stratum's contrast and its sign (-1: the stored contrast is of the other stratum
    of a two-stratum covariate, this one being its reference)."""
    mine = [c for c in strata.analysis.contrasts
            if (c.outcome, c.method, c.covariate) == (p.outcome, p.method, p.covariate)]
    for c in mine:
        if c.stratum == p.stratum:
            return c, 1
    tested = [cell.stratum for cell in _heterogeneity(strata, p).cells if cell.tested]
    if len(mine) == 1 and len(tested) == 2 and p.stratum in tested:
        return mine[0], -1
    return None


def _others_flagged(strata: StrataResult, p: StratumEffectParams, mine: Contrast) -> list[str]:
    return [f"{c.covariate} = {c.stratum} ({c.flag})" for c in strata.analysis.flagged()
            if c.outcome == p.outcome and c.method == p.method and c is not mine]


def _check_effect(claim_id: str, p: StratumEffectParams, strata: StrataResult) -> ClaimResult:
    alpha = strata.analysis.alpha
    found = _contrast(strata, p)
    if found is None:
        h = _heterogeneity(strata, p)
        return _fail(claim_id, _statement(p), alpha,
                     f"no tested contrast for {p.covariate} = {p.stratum}: "
                     f"{h.test.undefined_reason or 'stratum not tested'}")
    contrast, sign = found
    diff = contrast.difference
    estimate = sign * diff.estimate
    low, high = (diff.low, diff.high) if sign > 0 else (-diff.high, -diff.low)
    direction_ok = estimate > 0 if p.expect == "higher" else estimate < 0
    others = _others_flagged(strata, p, contrast) if p.exclusive else []
    passed = contrast.p_holm <= alpha and direction_ok and not others
    rates = (diff.rate_a, diff.rate_b) if sign > 0 else (diff.rate_b, diff.rate_a)
    detail = (f"rate {rates[0]:.4f} in {p.covariate} = {p.stratum} vs {rates[1]:.4f} in the "
              f"rest; Fisher p = {contrast.test.p_value:.4g}, Holm p = {contrast.p_holm:.4g}")
    if p.exclusive:
        detail += "; other flagged strata: " + (", ".join(others) or "none")
    return ClaimResult(
        claim_id=claim_id, kind="stratum_effect", family="strata", statement=_statement(p),
        passed=passed, statistic=f"{p.outcome} rate difference (stratum - rest)",
        observed=estimate, comparison=">=" if p.expect == "higher" else "<=", threshold=0.0,
        n=diff.n_a + diff.n_b, interval_low=low, interval_high=high,
        interval_method=diff.method, alpha=alpha, detail=detail,
        p_value=contrast.test.p_value, p_corrected=contrast.p_holm)


def _check_none(claim_id: str, p: StratumEffectParams, strata: StrataResult) -> ClaimResult:
    alpha = strata.analysis.alpha
    h = _heterogeneity(strata, p)
    tested = [c for c in h.cells if c.tested]
    mine = [c for c in tested if c.stratum == p.stratum]
    if not mine or len(tested) < 2:
        return _fail(claim_id, _statement(p), alpha,
                     f"{p.covariate} = {p.stratum} is not a tested stratum "
                     f"({h.test.undefined_reason or 'too few pairs'})")
    cell, rest = mine[0], [c for c in tested if c is not mine[0]]
    k_rest = sum(c.events for c in rest)
    n_rest = sum(c.n for c in rest)
    assert p.margin is not None
    tost = tost_unpaired_counts(cell.events, cell.n, k_rest, n_rest, margin=p.margin,
                                alpha=alpha)
    return ClaimResult(
        claim_id=claim_id, kind="stratum_effect", family="strata", statement=_statement(p),
        passed=tost.equivalent, statistic=f"{p.outcome} rate difference (stratum - rest)",
        observed=tost.estimate, comparison="contains", threshold=p.margin,
        n=cell.n + n_rest, interval_low=tost.low, interval_high=tost.high,
        interval_method=f"Newcombe hybrid score, {1 - 2 * alpha:g} (TOST)", alpha=alpha,
        detail=f"rate {tost.rate_a:.4f} ({cell.n} pairs) vs {tost.rate_b:.4f} ({n_rest}); TOST "
               f"p = {tost.p_value:.4g} against +-{p.margin:g}",
        p_value=tost.p_value)


def check_stratum_effect(claim_id: str, params: StratumEffectParams,
                         run: RunArtefacts) -> ClaimResult:
    """Judge a declared stratum effect (or its absence) on the run's ``strata.json``."""
    if run.strata is None:
        return _fail(claim_id, _statement(params), run.summary.method(params.method).fr_itt.alpha,
                     "the run has no strata.json: declare a [strata] table")
    levels = {c.name: c.levels for c in run.strata.covariates}
    if params.stratum not in levels.get(params.covariate, ()):
        raise ValueError(f"claim {claim_id}: {params.covariate} has no stratum "
                         f"{params.stratum!r} (or is not declared in [strata])")
    if params.expect == "none":
        return _check_none(claim_id, params, run.strata)
    return _check_effect(claim_id, params, run.strata)
