"""FR separation per Theorem 3.5: "method A is falsified less often than method B".

A paired comparison on the pairs both methods saw (joined on pair_id; different pair sets
raise, PITFALLS.md #10): the exact McNemar test (McNemar 1947) on the intention-to-treat
verdicts, Holm-corrected across every separation claim the protocol declares (Holm 1979),
and the paired risk difference FR_A - FR_B with Newcombe's interval (Newcombe 1998). The
claim holds when the corrected p-value is below alpha and the difference is negative.
Non-significance is never read as "no difference" (PITFALLS.md #11).
"""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.claims.params import spec_reader
from faceattr.config import TableReader
from faceattr.stats import adjust_family, paired_mcnemar, paired_risk_difference

__all__ = ["SeparationParams", "check_fr_separation", "read_separation"]


@dataclass(frozen=True, slots=True)
class SeparationParams:
    """``fr_separation``: ``better`` has a lower FR than ``worse``."""

    better: str
    worse: str
    alpha: float


def read_separation(reader: TableReader, method_ids: set[str]) -> SeparationParams:
    """Parse the two methods (distinct) and the family-wise alpha."""
    params = SeparationParams(better=reader.text("better", allowed=sorted(method_ids)),
                              worse=reader.text("worse", allowed=sorted(method_ids)),
                              alpha=reader.fraction("alpha", default=0.05, open_low=True,
                                                    maximum=0.5))
    reader.finish()
    if params.better == params.worse:
        raise ValueError(f"{reader.where}: better and worse must differ")
    return params


def _verdicts(run: RunArtefacts, method: str) -> dict[str, bool]:
    return {r.pair_id: r.falsified for r in run.records_of(method)}


def _raw_p(run: RunArtefacts, params: SeparationParams) -> float:
    test = paired_mcnemar(_verdicts(run, params.better), _verdicts(run, params.worse),
                          alpha=params.alpha).test
    if test.p_value is None:
        raise ValueError(f"McNemar undefined: {test.undefined_reason}")
    return test.p_value


def _family(run: RunArtefacts) -> dict[str, SeparationParams]:
    # Read here, not through the claim registry (which imports this module): the registry
    # reads ``fr_separation`` with read_separation too.
    methods = set(run.summary.methods)
    return {spec.id: read_separation(spec_reader(spec), methods) for spec in run.claims
            if spec.kind == "fr_separation"}


def check_fr_separation(claim_id: str, params: SeparationParams,
                        run: RunArtefacts) -> ClaimResult:
    """Judge one ordering with Holm's correction over the declared separation family."""
    family = _family(run) or {claim_id: params}
    family.setdefault(claim_id, params)
    adjusted = adjust_family({cid: _raw_p(run, p) for cid, p in sorted(family.items())},
                             method="holm", alpha=params.alpha)
    index = adjusted.claim_ids.index(claim_id)
    raw, corrected = adjusted.p_values[index], adjusted.adjusted[index]
    diff = paired_risk_difference(_verdicts(run, params.better), _verdicts(run, params.worse),
                                  alpha=params.alpha)
    passed = corrected < params.alpha and diff.estimate < 0
    return ClaimResult(
        claim_id=claim_id, kind="fr_separation", family="separation",
        statement=f"{params.better} is falsified less often than {params.worse} (exact "
                  f"McNemar, Holm over {len(family)} claim(s))",
        passed=passed, statistic="FR difference (better - worse)", observed=diff.estimate,
        comparison="<=", threshold=0.0, n=diff.n_a, interval_low=diff.low,
        interval_high=diff.high, interval_method=diff.method, alpha=params.alpha,
        detail=f"FR {diff.rate_a:.4f} vs {diff.rate_b:.4f}; McNemar p = {raw:.4g}, Holm "
               f"p = {corrected:.4g}; Cohen's h = {diff.cohens_h:.3f}",
        p_value=raw, p_corrected=corrected)
