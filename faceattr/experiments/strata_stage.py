"""The stratified-analysis stage (``[strata]``): where are maps non-uniform, where do they fail?

After the records: every pair's declared covariates (:mod:`faceattr.data.covariates`: the
synthetic world's exact nuisance, values computed from the probe and its landmarks, the pair's
label), binned by the declared cut points, and the analysis of :mod:`faceattr.stats.strata` on
the outcomes of the declared methods (falsified under the declared verdict, trivial map).
Writes ``strata.json`` (:class:`~faceattr.stats.strata.StrataResult`), hashed into the run's
ledger like every stage artefact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from faceattr.data.covariates import (
    CovariateSpec,
    StrataSpec,
    bin_label,
    covariate_value,
    pair_facts,
)
from faceattr.data.pairs import Pair, PairSource
from faceattr.io import read_json, write_json
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.stats.proportions import ProportionMethod
from faceattr.stats.strata import CovariateSummary, StrataResult, analyse_strata

if TYPE_CHECKING:
    from faceattr.experiments.context import RunContext

__all__ = ["STRATA_FILE", "Outcomes", "covariate_table", "load_strata", "record_outcomes",
           "run_strata_stage", "strata_result"]

STRATA_FILE = "strata.json"

Value = float | int | bool | None


def covariate_table(source: PairSource, pairs: Sequence[Pair],
                    covariates: Sequence[CovariateSpec]
                    ) -> dict[str, list[tuple[Value, str | None]]]:
    """pair_id -> (value, reason-if-undefined) of each covariate, in declared order."""
    table = {}
    for pair in pairs:
        facts = pair_facts(source, pair, source.load_image(pair.image_a))
        table[pair.pair_id] = [covariate_value(c.definition, facts) for c in covariates]
    return table


def _label(spec: CovariateSpec, value: Value) -> str | None:
    return None if value is None else bin_label(spec, value)


def _outcome(record: PairRecord, outcome: str, verdict: str) -> bool:
    if outcome == "trivial":
        return record.status == "trivial"
    if verdict == "simple":
        return record.falsified_simple
    if verdict == "theorem":
        return record.falsified_theorem
    return record.falsified


Outcomes = dict[tuple[str, str], dict[str, bool]]


def record_outcomes(spec: StrataSpec, records: Sequence[PairRecord]) -> tuple[str, Outcomes]:
    """The verdict rule ``falsified`` stands for, and (outcome, method) -> pair_id -> bool."""
    rules = {r.verdict_rule for r in records}
    if len(rules) != 1:
        raise ValueError(f"records mix verdict rules {sorted(rules)}")
    verdict_rule = rules.pop() if spec.verdict == "primary" else spec.verdict
    outcomes: Outcomes = {}
    for outcome in spec.outcomes:
        for method in spec.methods:
            outcomes[(outcome, method)] = {r.pair_id: _outcome(r, outcome, spec.verdict)
                                           for r in records if r.method == method}
    return verdict_rule, outcomes


def strata_result(spec: StrataSpec, table: dict[str, list[tuple[Value, str | None]]],
                  outcomes: Outcomes, *, verdict_rule: str, seed: int,
                  interval_method: ProportionMethod) -> StrataResult:
    """The analysis of the declared methods' outcomes over the covariate table."""
    pair_ids = sorted(table)
    for (outcome, method), mine in outcomes.items():
        if set(mine) != set(pair_ids):
            raise ValueError(f"method {method!r} ({outcome}): records cover {len(mine)} of "
                             f"the {len(pair_ids)} pairs")
    labels = {c.name: {p: _label(c, table[p][i][0]) for p in pair_ids}
              for i, c in enumerate(spec.covariates)}
    analysis = analyse_strata(
        labels, {c.name: c.labels() for c in spec.covariates}, outcomes,
        interactions=spec.interactions, alpha=spec.alpha,
        min_stratum_pairs=spec.min_stratum_pairs, n_resamples=spec.n_resamples,
        interval_method=interval_method,
        rng_for=lambda key: numpy_generator(seed, "strata", key))
    summaries = []
    for i, c in enumerate(spec.covariates):
        reasons = Counter(r for p in pair_ids if (r := table[p][i][1]) is not None)
        d = c.definition
        summaries.append(CovariateSummary(
            name=c.name, kind=d.kind, needs=d.needs, unit=d.unit, doc=d.doc, cuts=c.cuts,
            levels=c.labels(), undefined=tuple(sorted(reasons.items()))))
    pairs = tuple((p, tuple(table[p][i][0] for i in range(len(spec.covariates))),
                   tuple(labels[c.name][p] for c in spec.covariates)) for p in pair_ids)
    return StrataResult(verdict=spec.verdict, verdict_rule=verdict_rule,
                        covariates=tuple(summaries), pairs=pairs, analysis=analysis)


def run_strata_stage(ctx: RunContext, records: Sequence[PairRecord]) -> None:
    """Run the declared stratified analysis (``[strata]``) of ``records``."""
    protocol = ctx.protocol
    spec = protocol.strata
    assert spec is not None  # the pipeline runs a stage only when it is declared
    ids = {r.pair_id for r in records}
    pairs = [p for p in ctx.pairs if p.pair_id in ids]
    table = covariate_table(ctx.source, pairs, spec.covariates)
    verdict_rule, outcomes = record_outcomes(spec, records)
    result = strata_result(spec, table, outcomes, verdict_rule=verdict_rule, seed=protocol.seed,
                           interval_method=protocol.interval_method)
    write_json(ctx.folder.root / STRATA_FILE, result.to_json())


def load_strata(run_root: Path) -> StrataResult | None:
    """The run's stratified analysis, or None when the protocol declared none."""
    path = run_root / STRATA_FILE
    return StrataResult.from_json(read_json(path)) if path.exists() else None
