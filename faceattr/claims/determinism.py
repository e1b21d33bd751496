"""Determinism claim: the same seed gives the same bytes in fresh processes, whatever the
method order and batch size; another seed changes the stochastic fields (PITFALLS.md #14)."""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader

__all__ = ["DeterminismParams", "check_determinism", "read_determinism"]


@dataclass(frozen=True, slots=True)
class DeterminismParams:
    """No parameters: the protocol's ``[determinism]`` table sets the re-run size."""


def read_determinism(reader: TableReader, method_ids: set[str]) -> DeterminismParams:
    """Parse (no parameters)."""
    del method_ids
    reader.finish()
    return DeterminismParams()


def check_determinism(claim_id: str, params: DeterminismParams,
                      run: RunArtefacts) -> ClaimResult:
    """Judge the determinism stage's outcome (``determinism.json``)."""
    del params
    result = run.determinism
    alpha = next(iter(run.summary.methods.values())).fr_itt.alpha
    statement = ("records are byte-identical when re-run in fresh processes with the method "
                 "order reversed and one pair per batch; a new seed changes the stochastic "
                 "methods' records")
    if result is None:
        return ClaimResult(claim_id=claim_id, kind="determinism", family="determinism",
                           statement=statement, passed=False, statistic="re-run identical",
                           observed=0.0, comparison="==", threshold=1.0, n=0,
                           interval_low=None, interval_high=None, interval_method=None,
                           alpha=alpha, detail="no determinism stage ran: declare "
                                               "[determinism] n_pairs in the protocol")
    seed_ok = result.seed_changes_stochastic or not result.stochastic_methods
    passed = result.identical_across_processes and seed_ok
    same = ("identical" if result.identical_across_processes
            else f"DIFFER at {result.first_difference}")
    detail = (f"{result.n_lines_compared} record lines of {result.n_pairs} pairs {same}; "
              f"new seed {'changes' if result.seed_changes_stochastic else 'does NOT change'} "
              f"{', '.join(result.stochastic_methods) or 'no stochastic method'}")
    return ClaimResult(claim_id=claim_id, kind="determinism", family="determinism",
                       statement=statement, passed=passed, statistic="re-run identical",
                       observed=float(result.identical_across_processes), comparison="==",
                       threshold=1.0, n=result.n_lines_compared, interval_low=None,
                       interval_high=None, interval_method=None, alpha=alpha, detail=detail)
