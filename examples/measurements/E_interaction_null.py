# Usage: python examples/measurements/E_interaction_null.py FIRST_SEED LAST_SEED (README "Stratified analysis").
# Targeted calibration of the interaction family (permutation test + Holm) on the null world.
import sys

from faceattr.data.sources import build_source
from faceattr.experiments import strata_null as sn
from faceattr.experiments.strata_stage import _label, covariate_table
from faceattr.protocol import load_protocol
from faceattr.rng import numpy_generator
from faceattr.stats.proportions import proportion_interval
from faceattr.stats.strata import _holm, _permutation_interaction

protocol = load_protocol("validation/protocols/studies/strata_planted.toml")
spec = sn._spec(protocol)
first, last = int(sys.argv[1]), int(sys.argv[2])
cache, hits, hits_pair = {}, 0, {}
for seed in range(first, last):
    source = build_source(protocol.data, seed=seed); pairs = source.pairs()
    todo = [p for p in pairs if p.image_a not in cache]
    for p, row in zip(todo, covariate_table(source, todo, spec.covariates).values()): cache[p.image_a] = row
    out = sn.simulated_outcomes(pairs, seed)
    ids, tests = [], []
    for ci, cov in enumerate(spec.covariates):
        labels = {p.pair_id: (_label(cov, p.is_genuine) if cov.name == "is_genuine" else _label(cov, cache[p.image_a][ci][0])) for p in pairs}
        counts = {s: sum(1 for v in labels.values() if v == s) for s in cov.labels()}
        strata = tuple(s for s in cov.labels() if counts[s] >= spec.min_stratum_pairs)
        if len(strata) < 2: continue
        for o in ("falsified", "trivial"):
            for a, b in spec.interactions:
                t = _permutation_interaction(strata, labels, out[(o, a)], out[(o, b)], 0.05,
                                             numpy_generator(seed, "strata", f"{o}:{a}x{b}:{cov.name}"), 9999)
                if t.p_value is not None: ids.append(f"{o}:{a}x{b}:{cov.name}"); tests.append(t)
    adj = _holm(ids, tests, 0.05)
    rej = [i for i, q in zip(ids, adj) if q is not None and q <= 0.05]
    hits += bool(rej)
    if rej: print(seed, rej, flush=True)
ci = proportion_interval(hits, last - first, method="wilson", alpha=0.05)
print(f"interaction family FWER: {hits}/{last - first} = {ci.estimate:.4f} [{ci.low:.4f}, {ci.high:.4f}]; tests per seed {len(ids)}")
