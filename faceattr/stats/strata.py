"""Stratified analysis of per-pair outcomes: where are they heterogeneous, and where do they fail?

Inputs are plain mappings: each covariate's stratum per pair (None where the covariate is
undefined), and each (outcome, method)'s binary outcome per pair (falsified, or a trivial map).
Strata are fixed before any outcome is seen (declared cut points, fixed levels); strata with
fewer than ``min_stratum_pairs`` pairs are shown but not tested (a rule on covariate counts).

Three families of tests, each Holm-corrected over all of its defined tests (Holm 1979):

- **heterogeneity** of one method's outcome across the strata of one covariate. The strata
  hold disjoint pairs and one outcome per pair, so the outcomes are independent binomials:
  Fisher's exact test for two strata, the Fisher-Freeman-Halton exact test (Freeman & Halton
  1951) with a Monte Carlo p-value from a keyed generator for more;
- **stratum contrasts**: each stratum against the pooled rest (for two strata, the second
  level against the first), Fisher's exact test, with the risk difference and Newcombe's
  hybrid score interval (Newcombe 1998). A stratum whose corrected p-value is at most alpha
  is *flagged*: ``higher`` (the outcome is more frequent there: the method fails there) or
  ``lower``;
- **method x stratum interaction** between two methods on the same pairs: is the paired
  difference ``rate_a - rate_b`` the same in every stratum? Decided by a Monte Carlo
  permutation test (keyed generator) of the between-strata sum of squares of the per-pair
  differences, pairs permuted whole (the within-pair correlation is kept). Reported beside it:
  a linear probability model of the outcome on stratum x method fitted by GEE with the pair as
  cluster (Liang & Zeger 1986), bias-reduced sandwich covariance (Mancl & DeRouen 2001), and
  its Wald test. The saturated model's estimates are the cell rates, so it stays defined when
  a cell's rate is 0 or 1 (where a logistic model has no maximum-likelihood estimate); but in
  a null world its Wald test rejected too often (family-wise 0.09 over 100 seeds at alpha
  0.05: a stratum whose differences are all equal gets zero sandwich variance), so it does not
  decide.

Absence of an effect is never read from a non-significant test (PITFALLS.md #11): that needs
:func:`faceattr.stats.equivalence.tost_unpaired_counts` with a declared margin.

References
----------
.. [1] S. Holm, Scand. J. Statist. 6(2):65-70, 1979.
.. [2] G. H. Freeman and J. H. Halton, "Note on an exact treatment of contingency, goodness of
   fit and other problems of significance", Biometrika 38(1/2):141-149, 1951.
.. [3] R. G. Newcombe, Statistics in Medicine 17(8):873-890, 1998.
.. [4] K.-Y. Liang and S. L. Zeger, "Longitudinal data analysis using generalized linear
   models", Biometrika 73(1):13-22, 1986.
.. [5] L. A. Mancl and T. A. DeRouen, "A covariance estimator for GEE with improved
   small-sample properties", Biometrics 57(1):126-134, 2001.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as _sps

from faceattr.stats.multiplicity import adjust_family
from faceattr.stats.proportions import ProportionInterval, ProportionMethod, proportion_interval
from faceattr.stats.records import DifferenceInterval, TestResult, direction_of
from faceattr.stats.unpaired import newcombe_unpaired_interval

__all__ = ["Contrast", "CovariateSummary", "Heterogeneity", "Interaction", "StrataAnalysis",
           "StrataResult", "StratumCell", "analyse_strata", "analysis_from_json"]

Labels = Mapping[str, str | None]  # pair_id -> stratum (None: undefined covariate)
Outcome = Mapping[str, bool]  # pair_id -> outcome
RngFor = Callable[[str], np.random.Generator]


@dataclass(frozen=True, slots=True)
class StratumCell:
    """One stratum's outcome rate: ``rate`` is None when the stratum has no pair."""

    stratum: str
    n: int
    rate: ProportionInterval | None
    tested: bool

    @property
    def events(self) -> int:
        """Pairs with the outcome (0 in an empty stratum)."""
        return 0 if self.rate is None else self.rate.count

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"stratum": self.stratum, "n": self.n, "tested": self.tested,
                "rate": None if self.rate is None else self.rate.to_json()}


@dataclass(frozen=True, slots=True)
class Heterogeneity:
    """One (outcome, method, covariate): the rate per stratum and the test across strata."""

    outcome: str
    method: str
    covariate: str
    cells: tuple[StratumCell, ...]
    n_undefined: int
    test: TestResult
    p_holm: float | None

    @property
    def reject(self) -> bool | None:
        """Holm-corrected decision (None when the test is undefined)."""
        return None if self.p_holm is None else self.p_holm <= self.test.alpha

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"outcome": self.outcome, "method": self.method, "covariate": self.covariate,
                "cells": [c.to_json() for c in self.cells], "n_undefined": self.n_undefined,
                "test": self.test.to_json(), "p_holm": self.p_holm, "reject": self.reject}


@dataclass(frozen=True, slots=True)
class Contrast:
    """One stratum against the rest: risk difference (stratum - rest) and Fisher's test."""

    outcome: str
    method: str
    covariate: str
    stratum: str
    difference: DifferenceInterval
    test: TestResult
    p_holm: float

    @property
    def flag(self) -> str | None:
        """``"higher"`` / ``"lower"`` when significant after Holm, else None."""
        if self.p_holm > self.test.alpha or self.difference.estimate == 0:
            return None
        return "higher" if self.difference.estimate > 0 else "lower"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"outcome": self.outcome, "method": self.method, "covariate": self.covariate,
                "stratum": self.stratum, "difference": self.difference.to_json(),
                "test": self.test.to_json(), "p_holm": self.p_holm, "flag": self.flag}


@dataclass(frozen=True, slots=True)
class Interaction:
    """Method x stratum: ``rate_a - rate_b`` per tested stratum; the decision is the
    permutation test (``test``), the GEE Wald test (``gee``) is reported beside it."""

    outcome: str
    method_a: str
    method_b: str
    covariate: str
    strata: tuple[str, ...]
    differences: tuple[float, ...]
    test: TestResult
    gee: TestResult
    p_holm: float | None

    @property
    def reject(self) -> bool | None:
        """Holm-corrected decision (None when the test is undefined)."""
        return None if self.p_holm is None else self.p_holm <= self.test.alpha

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"outcome": self.outcome, "method_a": self.method_a, "method_b": self.method_b,
                "covariate": self.covariate, "strata": list(self.strata),
                "differences": list(self.differences), "test": self.test.to_json(),
                "gee": self.gee.to_json(), "p_holm": self.p_holm, "reject": self.reject}


@dataclass(frozen=True, slots=True)
class StrataAnalysis:
    """Every family of the analysis, at one family-wise ``alpha`` (Holm in each family)."""

    heterogeneity: tuple[Heterogeneity, ...]
    contrasts: tuple[Contrast, ...]
    interactions: tuple[Interaction, ...]
    alpha: float

    def flagged(self) -> list[Contrast]:
        """The contrasts significant after Holm."""
        return [c for c in self.contrasts if c.flag is not None]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"alpha": self.alpha, "correction": "holm",
                "heterogeneity": [h.to_json() for h in self.heterogeneity],
                "contrasts": [c.to_json() for c in self.contrasts],
                "interactions": [i.to_json() for i in self.interactions]}


def _cells(labels: Labels, outcome: Outcome, levels: Sequence[str], *, min_pairs: int,
           alpha: float, method: ProportionMethod) -> tuple[list[StratumCell], int]:
    counts = {s: [0, 0] for s in levels}  # [n, events]
    n_undefined = 0
    for pair_id, value in outcome.items():
        stratum = labels[pair_id]
        if stratum is None:
            n_undefined += 1
            continue
        counts[stratum][0] += 1
        counts[stratum][1] += int(value)
    cells = [StratumCell(stratum=s, n=n, tested=n >= min_pairs,
                         rate=proportion_interval(k, n, method=method, alpha=alpha)
                         if n else None) for s, (n, k) in counts.items()]
    return cells, n_undefined


def _table(cells: Sequence[StratumCell]) -> NDArray[np.int64]:
    return np.array([[c.events, c.n - c.events] for c in cells], dtype=np.int64)


def _undefined(method: str, n: int, alpha: float, reason: str) -> TestResult:
    return TestResult(method=method, statistic=None, p_value=None, alternative="two-sided",
                      direction="none", n=n, alpha=alpha, undefined_reason=reason)


def _exact_test(table: NDArray[np.int64], alpha: float, rng: np.random.Generator,
                n_resamples: int) -> TestResult:
    """Fisher (2 rows) or Fisher-Freeman-Halton (Monte Carlo, keyed) on a k x 2 table; the
    statistic is the probability of the observed table given its margins."""
    n = int(table.sum())
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    name = "fisher-exact" if len(table) == 2 else \
        f"fisher-freeman-halton-monte-carlo-{n_resamples}"
    if (cols == 0).any():  # one outcome only: the observed table is the only table
        return TestResult(method=name, statistic=1.0, p_value=1.0, alternative="two-sided",
                          direction="none", n=n, alpha=alpha)
    pmf = float(_sps.random_table(rows, cols).pmf(table))
    if len(table) == 2:
        p = float(_sps.fisher_exact(table, alternative="two-sided").pvalue)
    else:
        p = float(_sps.fisher_exact(table, method=_sps.MonteCarloMethod(
            n_resamples=n_resamples, rng=rng)).pvalue)
    return TestResult(method=name, statistic=pmf, p_value=min(max(p, 0.0), 1.0),
                      alternative="two-sided", direction="none", n=n, alpha=alpha)


def _heterogeneity(outcome_name: str, method: str, covariate: str, labels: Labels,
                   outcome: Outcome, levels: Sequence[str], *, alpha: float, min_pairs: int,
                   interval: ProportionMethod, rng: np.random.Generator,
                   n_resamples: int) -> Heterogeneity:
    cells, n_undefined = _cells(labels, outcome, levels, min_pairs=min_pairs, alpha=alpha,
                                method=interval)
    tested = [c for c in cells if c.tested]
    n = sum(c.n for c in tested)
    if len(tested) < 2:
        test = _undefined("fisher-exact", n, alpha,
                          f"fewer than 2 strata with >= {min_pairs} pairs "
                          f"({', '.join(f'{c.stratum}: {c.n}' for c in cells)}; "
                          f"{n_undefined} undefined)")
    else:
        test = _exact_test(_table(tested), alpha, rng, n_resamples)
    return Heterogeneity(outcome=outcome_name, method=method, covariate=covariate,
                         cells=tuple(cells), n_undefined=n_undefined, test=test, p_holm=None)


def _contrasts(h: Heterogeneity, alpha: float) -> list[Contrast]:
    tested = [c for c in h.cells if c.tested]
    if len(tested) < 2:
        return []
    out = []
    for cell in tested[1:] if len(tested) == 2 else tested:
        rest = [c for c in tested if c is not cell]
        k_in = cell.events
        k_rest = sum(c.events for c in rest)
        n_rest = sum(c.n for c in rest)
        diff = newcombe_unpaired_interval(k_in, cell.n, k_rest, n_rest, alpha=alpha)
        table = np.array([[k_in, cell.n - k_in], [k_rest, n_rest - k_rest]], dtype=np.int64)
        p = float(_sps.fisher_exact(table, alternative="two-sided").pvalue) \
            if table[:, 0].sum() and table[:, 1].sum() else 1.0
        test = TestResult(method="fisher-exact", statistic=diff.estimate,
                          p_value=min(max(p, 0.0), 1.0), alternative="two-sided",
                          direction=direction_of(diff.estimate), n=cell.n + n_rest, alpha=alpha)
        out.append(Contrast(outcome=h.outcome, method=h.method, covariate=h.covariate,
                            stratum=cell.stratum, difference=diff, test=test, p_holm=1.0))
    return out


def _interaction_design(strata: Sequence[str], labels: Labels, a: Outcome, b: Outcome
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Stacked outcomes (a then b per pair), the saturated design (stratum cell means of a,
    then b - a per stratum) and the pair clusters."""
    index = {s: j for j, s in enumerate(strata)}
    k = len(strata)
    ys, rows, groups = [], [], []
    for g, pair_id in enumerate(sorted(p for p in a if labels[p] in index)):
        j = index[labels[pair_id]]  # type: ignore[index]
        for is_b, y in ((0, a[pair_id]), (1, b[pair_id])):
            row = np.zeros(2 * k)
            row[j] = 1.0
            row[k + j] = float(is_b)
            rows.append(row)
            ys.append(float(y))
            groups.append(g)
    return np.asarray(ys), np.stack(rows), np.asarray(groups, dtype=np.int64)


def _gee_wald(strata: Sequence[str], labels: Labels, a: Outcome, b: Outcome,
              alpha: float) -> tuple[tuple[float, ...], TestResult]:
    """GEE (Gaussian, identity link, independence working correlation, pair clusters,
    bias-reduced sandwich) and the Wald test of equal ``b - a`` across strata."""
    import statsmodels.api as sm

    y, x, groups = _interaction_design(strata, labels, a, b)
    k = len(strata)
    n_pairs = int(groups.max()) + 1 if groups.size else 0
    name = "gee-lpm-wald-bias-reduced"
    d = np.array([a[p] - b[p] for p in sorted(a) if labels[p] in set(strata)], dtype=float)
    cell_d = []
    for s in strata:
        mine = [float(a[p]) - float(b[p]) for p in a if labels[p] == s]
        cell_d.append(float(np.mean(mine)))
    if np.ptp(d) == 0:
        return tuple(cell_d), _undefined(name, n_pairs, alpha, "the two methods' outcome "
                                         "difference is the same on every pair")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter on 0/1 cells
        fit = sm.GEE(y, x, groups=groups, family=sm.families.Gaussian(),
                     cov_struct=sm.cov_struct.Independence()).fit(cov_type="bias_reduced")
    beta = np.asarray(fit.params, dtype=np.float64)
    cov = np.asarray(fit.cov_params(), dtype=np.float64)
    contrast = np.zeros((k - 1, 2 * k))
    for j in range(1, k):
        contrast[j - 1, k + j], contrast[j - 1, k] = 1.0, -1.0
    effect, var = contrast @ beta, contrast @ cov @ contrast.T
    if not np.isfinite(var).all() or np.linalg.matrix_rank(var, tol=1e-12) < k - 1:
        return tuple(cell_d), _undefined(name, n_pairs, alpha, "the between-method difference "
                                         "does not vary within the strata (zero variance)")
    wald = float(effect @ np.linalg.solve(var, effect))
    p = float(_sps.chi2.sf(wald, df=k - 1))
    return tuple(cell_d), TestResult(method=name, statistic=wald, p_value=min(max(p, 0.0), 1.0),
                                     alternative="two-sided", direction="none", n=n_pairs,
                                     alpha=alpha, df=float(k - 1))


def _paired_differences(strata: Sequence[str], labels: Labels, a: Outcome, b: Outcome
                        ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    index = {s: j for j, s in enumerate(strata)}
    ids = sorted(p for p in a if labels[p] in index)
    d = np.array([float(a[p]) - float(b[p]) for p in ids])
    return d, np.array([index[labels[p]] for p in ids], dtype=np.int64)  # type: ignore[index]


def _permutation_interaction(strata: Sequence[str], labels: Labels, a: Outcome, b: Outcome,
                             alpha: float, rng: np.random.Generator,
                             n_resamples: int) -> TestResult:
    """Monte Carlo permutation test of equal mean paired difference ``a - b`` across strata:
    the statistic is the between-strata sum of squares of the per-pair differences (the
    one-way ANOVA F up to a permutation-invariant factor); pairs are permuted whole, so the
    within-pair correlation is kept, and zero-variance strata need no variance estimate."""
    d, group = _paired_differences(strata, labels, a, b)
    name = f"permutation-paired-difference-{n_resamples}"
    if np.ptp(d) == 0:
        return _undefined(name, d.size, alpha, "the two methods' outcome difference is the "
                                               "same on every pair")
    k = len(strata)
    onehot = np.zeros((d.size, k))
    onehot[np.arange(d.size), group] = 1.0
    counts = onehot.sum(axis=0)

    def between_ss(values: NDArray[np.float64]) -> NDArray[np.float64]:
        means = (values @ onehot) / counts
        ss: NDArray[np.float64] = ((means - d.mean()) ** 2 * counts).sum(axis=-1)
        return ss

    observed = float(between_ss(d[None, :])[0])
    exceed = 0
    for start in range(0, n_resamples, 1000):
        block = rng.permuted(np.tile(d, (min(1000, n_resamples - start), 1)), axis=1)
        exceed += int((between_ss(block) >= observed * (1 - 1e-12)).sum())
    return TestResult(method=name, statistic=observed, p_value=(exceed + 1) / (n_resamples + 1),
                      alternative="two-sided", direction="none", n=int(d.size), alpha=alpha,
                      df=float(k - 1))


def _holm(ids: Sequence[str], tests: Sequence[TestResult], alpha: float) -> list[float | None]:
    defined = {i: t.p_value for i, t in zip(ids, tests, strict=True) if t.p_value is not None}
    if not defined:
        return [None] * len(ids)
    family = adjust_family(defined, method="holm", alpha=alpha)
    adjusted = dict(zip(family.claim_ids, family.adjusted, strict=True))
    return [adjusted.get(i) for i in ids]


def analyse_strata(labels: Mapping[str, Labels], levels: Mapping[str, Sequence[str]],
                   outcomes: Mapping[tuple[str, str], Outcome], *,
                   interactions: Sequence[tuple[str, str]], alpha: float,
                   min_stratum_pairs: int, n_resamples: int, interval_method: ProportionMethod,
                   rng_for: RngFor) -> StrataAnalysis:
    """The stratified analysis of every (outcome, method) over every covariate.

    Parameters
    ----------
    labels : mapping
        Covariate -> pair_id -> stratum label (None: undefined for that pair).
    levels : mapping
        Covariate -> its strata, in order (the first is the reference of a two-stratum
        contrast).
    outcomes : mapping
        (outcome, method) -> pair_id -> bool; every method must cover the same pairs.
    interactions : sequence of (method_a, method_b)
        Method pairs whose method x stratum interaction is tested on each outcome.
    alpha : float
        Family-wise level.
    min_stratum_pairs : int
        Strata with fewer pairs are not tested.
    n_resamples : int
        Monte Carlo tables of the Fisher-Freeman-Halton test (more than two strata).
    interval_method : {"wilson", "clopper-pearson"}
        Interval of each stratum's rate.
    rng_for : callable
        Test id -> its own generator (keyed; the Monte Carlo p-values depend on nothing else).
    """
    pair_sets = {frozenset(o) for o in outcomes.values()}
    if len(pair_sets) > 1:
        raise ValueError("every (outcome, method) must cover the same pairs (PITFALLS.md #10)")
    het: list[Heterogeneity] = []
    for (outcome_name, method), outcome in outcomes.items():
        for covariate, labels_of in labels.items():
            het.append(_heterogeneity(
                outcome_name, method, covariate, labels_of, outcome, levels[covariate],
                alpha=alpha, min_pairs=min_stratum_pairs, interval=interval_method,
                rng=rng_for(f"{outcome_name}:{method}:{covariate}"), n_resamples=n_resamples))
    het_p = _holm([f"{h.outcome}:{h.method}:{h.covariate}" for h in het], [h.test for h in het],
                  alpha)
    het = [replace(h, p_holm=p) for h, p in zip(het, het_p, strict=True)]
    contrasts = [c for h in het for c in _contrasts(h, alpha)]
    con_p = _holm([f"{c.outcome}:{c.method}:{c.covariate}:{c.stratum}" for c in contrasts],
                  [c.test for c in contrasts], alpha)
    contrasts = [replace(c, p_holm=1.0 if p is None else p)
                 for c, p in zip(contrasts, con_p, strict=True)]
    inter: list[Interaction] = []
    for outcome_name in sorted({o for o, _ in outcomes}):
        for method_a, method_b in interactions:
            for h in het:
                if h.outcome != outcome_name or h.method != method_a:
                    continue
                strata = tuple(c.stratum for c in h.cells if c.tested)
                a, b = outcomes[(outcome_name, method_a)], outcomes[(outcome_name, method_b)]
                if len(strata) < 2:
                    diffs: tuple[float, ...] = ()
                    why = h.test.undefined_reason or "fewer than 2 strata"
                    gee = _undefined("gee-lpm-wald-bias-reduced", 0, alpha, why)
                    test = _undefined(f"permutation-paired-difference-{n_resamples}", 0, alpha,
                                      why)
                else:
                    diffs, gee = _gee_wald(strata, labels[h.covariate], a, b, alpha)
                    test = _permutation_interaction(
                        strata, labels[h.covariate], a, b, alpha,
                        rng_for(f"{outcome_name}:{method_a}x{method_b}:{h.covariate}"),
                        n_resamples)
                inter.append(Interaction(outcome=outcome_name, method_a=method_a,
                                         method_b=method_b, covariate=h.covariate,
                                         strata=strata, differences=diffs, test=test, gee=gee,
                                         p_holm=None))
    int_p = _holm([f"{i.outcome}:{i.method_a}x{i.method_b}:{i.covariate}" for i in inter],
                  [i.test for i in inter], alpha)
    inter = [replace(i, p_holm=p) for i, p in zip(inter, int_p, strict=True)]
    return StrataAnalysis(heterogeneity=tuple(het), contrasts=tuple(contrasts),
                          interactions=tuple(inter), alpha=alpha)


# --- strata.json: the stage's artefact ----------------------------------------------------------


def _test_from(row: Mapping[str, Any]) -> TestResult:
    return TestResult(**{k: v for k, v in row.items() if k != "reject"})


def _cell_from(row: Mapping[str, Any]) -> StratumCell:
    rate = row["rate"]
    return StratumCell(stratum=row["stratum"], n=row["n"], tested=row["tested"],
                       rate=None if rate is None else ProportionInterval(**rate))


def analysis_from_json(row: Mapping[str, Any]) -> StrataAnalysis:
    """Rebuild (and so re-validate) an analysis from its JSON; derived keys are checked."""
    het = tuple(Heterogeneity(
        outcome=h["outcome"], method=h["method"], covariate=h["covariate"],
        cells=tuple(_cell_from(c) for c in h["cells"]), n_undefined=h["n_undefined"],
        test=_test_from(h["test"]), p_holm=h["p_holm"]) for h in row["heterogeneity"])
    con = tuple(Contrast(
        outcome=c["outcome"], method=c["method"], covariate=c["covariate"],
        stratum=c["stratum"], difference=DifferenceInterval(**c["difference"]),
        test=_test_from(c["test"]), p_holm=c["p_holm"]) for c in row["contrasts"])
    inter = tuple(Interaction(
        outcome=i["outcome"], method_a=i["method_a"], method_b=i["method_b"],
        covariate=i["covariate"], strata=tuple(i["strata"]),
        differences=tuple(i["differences"]), test=_test_from(i["test"]),
        gee=_test_from(i["gee"]), p_holm=i["p_holm"])
        for i in row["interactions"])
    analysis = StrataAnalysis(heterogeneity=het, contrasts=con, interactions=inter,
                              alpha=row["alpha"])
    if analysis.to_json() != dict(row):
        raise ValueError("strata analysis JSON does not round-trip (a derived field such as "
                         "a flag or a decision was edited)")
    return analysis


@dataclass(frozen=True, slots=True)
class CovariateSummary:
    """One declared covariate as analysed: definition, strata and why values are missing."""

    name: str
    kind: str
    needs: str
    unit: str
    doc: str
    cuts: tuple[float, ...]
    levels: tuple[str, ...]
    undefined: tuple[tuple[str, int], ...]  # (reason, number of pairs)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "kind": self.kind, "needs": self.needs, "unit": self.unit,
                "doc": self.doc, "cuts": list(self.cuts), "levels": list(self.levels),
                "undefined": [{"reason": r, "n_pairs": n} for r, n in self.undefined]}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> CovariateSummary:
        """Rebuild from JSON."""
        return cls(name=row["name"], kind=row["kind"], needs=row["needs"], unit=row["unit"],
                   doc=row["doc"], cuts=tuple(row["cuts"]), levels=tuple(row["levels"]),
                   undefined=tuple((u["reason"], u["n_pairs"]) for u in row["undefined"]))


@dataclass(frozen=True, slots=True)
class StrataResult:
    """``strata.json``: which verdict, the covariates, every pair's values and strata, and the
    analysis."""

    verdict: str  # "primary" / "simple" / "theorem" as declared
    verdict_rule: str  # the verdict the outcome "falsified" is: "simple" or "theorem"
    covariates: tuple[CovariateSummary, ...]
    pairs: tuple[tuple[str, tuple[float | int | bool | None, ...], tuple[str | None, ...]], ...]
    analysis: StrataAnalysis

    def __post_init__(self) -> None:
        k = len(self.covariates)
        for pair_id, values, strata in self.pairs:
            if len(values) != k or len(strata) != k:
                raise ValueError(f"strata.json: pair {pair_id} has {len(values)} values and "
                                 f"{len(strata)} strata for {k} covariates")
            for value, stratum, cov in zip(values, strata, self.covariates, strict=True):
                if (value is None) != (stratum is None) or \
                        (stratum is not None and stratum not in cov.levels):
                    raise ValueError(f"strata.json: pair {pair_id}, {cov.name}: value "
                                     f"{value!r} and stratum {stratum!r} disagree")

    def labels(self, covariate: str) -> dict[str, str | None]:
        """pair_id -> stratum of one covariate."""
        index = [c.name for c in self.covariates].index(covariate)
        return {pair_id: strata[index] for pair_id, _, strata in self.pairs}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        names = [c.name for c in self.covariates]
        return {"verdict": self.verdict, "verdict_rule": self.verdict_rule,
                "covariates": [c.to_json() for c in self.covariates],
                "pairs": [{"pair_id": p, "values": dict(zip(names, v, strict=True)),
                           "strata": dict(zip(names, s, strict=True))}
                          for p, v, s in self.pairs],
                "analysis": self.analysis.to_json()}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> StrataResult:
        """Rebuild from JSON (exact covariate keys per pair)."""
        covariates = tuple(CovariateSummary.from_json(c) for c in row["covariates"])
        names = [c.name for c in covariates]
        pairs = []
        for entry in row["pairs"]:
            if set(entry["values"]) != set(names) or set(entry["strata"]) != set(names):
                raise ValueError(f"strata.json: pair {entry['pair_id']} does not list the "
                                 f"covariates {names}")
            pairs.append((entry["pair_id"], tuple(entry["values"][n] for n in names),
                          tuple(entry["strata"][n] for n in names)))
        return cls(verdict=row["verdict"], verdict_rule=row["verdict_rule"],
                   covariates=covariates, pairs=tuple(pairs),
                   analysis=analysis_from_json(row["analysis"]))
