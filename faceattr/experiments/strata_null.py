"""The stratified analysis' false-positive rate in a null world (no planted dependence).

Covariates are the real ones of a synthetic pair source (the generator's exact nuisance, the
probe's luminance and contrast, the pair label; a fresh pair sample per seed), and verdicts are
drawn independently of them: methods with falsification rates from near 0 to 0.5, a trivial
outcome, and two methods whose verdicts are correlated within a pair (the interaction test's
clusters). Each seed runs the full analysis of :func:`faceattr.experiments.strata_stage.
strata_result` at the protocol's alpha; the family-wise false-positive rate of each family is
the share of seeds with at least one rejection, with its Wilson interval.

Usage::

    python -m faceattr.experiments.strata_null validation/protocols/studies/strata_planted.toml \
        --seeds 100
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from faceattr.data.covariates import StrataSpec
from faceattr.data.pairs import Pair
from faceattr.experiments.strata_stage import Outcomes, Value, covariate_table, strata_result
from faceattr.protocol import Protocol, load_protocol
from faceattr.rng import numpy_generator
from faceattr.stats.proportions import ProportionInterval, proportion_interval

__all__ = ["NULL_METHODS", "NullWorldResult", "null_world", "simulated_outcomes"]

#: Simulated methods: (id, falsification rate, trivial share); "b" copies "a" up to 20% flips.
NULL_METHODS: tuple[tuple[str, float, float], ...] = (
    ("near_zero", 0.02, 0.0), ("quarter", 0.25, 0.05), ("half", 0.5, 0.1),
    ("a", 0.3, 0.0), ("b", 0.3, 0.0))
_FLIP_B = 0.2


def simulated_outcomes(pairs: Sequence[Pair], seed: int) -> Outcomes:
    """Outcomes independent of every covariate (keyed by ``(seed, "null", pair_id)``); a
    trivial map counts as falsified (intention-to-treat)."""
    outcomes: Outcomes = {(o, m): {} for o in ("falsified", "trivial") for m, _, _ in NULL_METHODS}
    for pair in pairs:
        draws = numpy_generator(seed, "null", pair.pair_id).random((len(NULL_METHODS), 2))
        a_falsified = False
        for (method, rate, trivial_share), (u, v) in zip(NULL_METHODS, draws, strict=True):
            trivial = bool(v < trivial_share)
            falsified = bool(u < rate)
            if method == "a":
                a_falsified = falsified
            if method == "b":
                falsified, trivial = a_falsified != bool(v < _FLIP_B), False  # within-pair
            outcomes[("falsified", method)][pair.pair_id] = falsified or trivial
            outcomes[("trivial", method)][pair.pair_id] = trivial
    return outcomes


@dataclass(frozen=True, slots=True)
class NullWorldResult:
    """Share of seeds with at least one rejection, per family (Wilson intervals)."""

    n_seeds: int
    n_tests: dict[str, int]
    any_flag: ProportionInterval
    any_heterogeneity: ProportionInterval
    any_interaction: ProportionInterval
    raw_rejections: ProportionInterval  # every single test's raw p <= alpha (per-test level)


def _spec(protocol: Protocol) -> StrataSpec:
    assert protocol.strata is not None
    methods = tuple(m for m, _, _ in NULL_METHODS)
    return replace(protocol.strata, methods=methods, outcomes=("falsified", "trivial"),
                   interactions=(("a", "b"), ("near_zero", "half")))


def null_world(protocol: Protocol, n_seeds: int) -> NullWorldResult:
    """Run the analysis on ``n_seeds`` fresh pair samples with covariate-free verdicts."""
    from faceattr.data.sources import build_source

    spec = _spec(protocol)
    cache: dict[str, list[tuple[Value, str | None]]] = {}
    counts = {"flag": 0, "het": 0, "int": 0}
    raw, raw_n, n_tests = 0, 0, {"contrasts": 0, "heterogeneity": 0, "interactions": 0}
    for seed in range(n_seeds):
        source = build_source(protocol.data, seed=seed)
        pairs = source.pairs()
        todo = [p for p in pairs if p.image_a not in cache]
        for image_a, row in zip([p.image_a for p in todo],
                                covariate_table(source, todo, spec.covariates).values(),
                                strict=True):
            cache[image_a] = row
        table = {p.pair_id: [(v, r) if spec.covariates[i].name != "is_genuine" else
                             (p.is_genuine, None) for i, (v, r) in enumerate(cache[p.image_a])]
                 for p in pairs}
        result = strata_result(spec, table, simulated_outcomes(pairs, seed),
                               verdict_rule="simple", seed=seed,
                               interval_method=protocol.interval_method).analysis
        counts["flag"] += bool(result.flagged())
        counts["het"] += any(h.reject for h in result.heterogeneity)
        counts["int"] += any(i.reject for i in result.interactions)
        tests = ([c.test for c in result.contrasts] + [h.test for h in result.heterogeneity]
                 + [i.test for i in result.interactions])
        raw += sum(t.p_value is not None and t.p_value <= result.alpha for t in tests)
        raw_n += sum(t.p_value is not None for t in tests)
        n_tests = {"contrasts": len(result.contrasts),
                   "heterogeneity": sum(h.test.p_value is not None for h in result.heterogeneity),
                   "interactions": sum(i.test.p_value is not None
                                       for i in result.interactions)}

    def share(k: int, n: int) -> ProportionInterval:
        return proportion_interval(k, n, method="wilson", alpha=0.05)

    return NullWorldResult(n_seeds=n_seeds, n_tests=n_tests,
                           any_flag=share(counts["flag"], n_seeds),
                           any_heterogeneity=share(counts["het"], n_seeds),
                           any_interaction=share(counts["int"], n_seeds),
                           raw_rejections=share(raw, raw_n))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the null world's family-wise false-positive rates."""
    parser = argparse.ArgumentParser(prog="python -m faceattr.experiments.strata_null")
    parser.add_argument("protocol", type=Path)
    parser.add_argument("--seeds", type=int, default=100)
    args = parser.parse_args(argv)
    result = null_world(load_protocol(args.protocol), args.seeds)
    print(f"{result.n_seeds} seeds; tests per seed: {result.n_tests}")
    for name in ("any_flag", "any_heterogeneity", "any_interaction", "raw_rejections"):
        ci: ProportionInterval = getattr(result, name)
        print(f"{name}: {ci.count}/{ci.n} = {ci.estimate:.4f} [{ci.low:.4f}, {ci.high:.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
