"""Regression claim: the run is equivalent to its declared baseline (``faceattr compare``:
paired McNemar and paired TOST within the declared margin on the shared pairs)."""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader

__all__ = ["RegressionParams", "check_regression", "read_regression"]

#: ``faceattr compare`` exit codes; only 0 (shown equivalent) passes the claim: 4
#: (inconclusive: too few pairs to show equivalence) is not a regression, but not a pass either.
_VERDICTS = {0: "equivalent", 1: "REGRESSION", 2: "NOT COMPARABLE",
             4: "INCONCLUSIVE (too few pairs to show equivalence)"}


@dataclass(frozen=True, slots=True)
class RegressionParams:
    """No parameters: the protocol's ``[baseline]`` table names the baseline and margin."""


def read_regression(reader: TableReader, method_ids: set[str]) -> RegressionParams:
    """Parse (no parameters)."""
    del method_ids
    reader.finish()
    return RegressionParams()


def check_regression(claim_id: str, params: RegressionParams, run: RunArtefacts) -> ClaimResult:
    """Pass only when the comparison with the baseline exits 0 (equivalent within margin)."""
    del params
    alpha = next(iter(run.summary.methods.values())).fr_itt.alpha
    comparison = run.comparison
    statement = "the run is equivalent to its declared baseline within the declared margin"
    if comparison is None:
        return ClaimResult(claim_id=claim_id, kind="regression", family="regression",
                           statement=statement, passed=False, statistic="compare exit code",
                           observed=2.0, comparison="==", threshold=0.0, n=0,
                           interval_low=None, interval_high=None, interval_method=None,
                           alpha=alpha, detail="no comparison ran: declare [baseline] path")
    code = int(comparison["exit_code"])
    reasons = "; ".join(str(r) for r in comparison["exit_reasons"]) or "none"
    return ClaimResult(claim_id=claim_id, kind="regression", family="regression",
                       statement=f"{statement} ({comparison['margin']:g})",
                       passed=code == 0, statistic="compare exit code", observed=float(code),
                       comparison="==", threshold=0.0, n=0, interval_low=None,
                       interval_high=None, interval_method=None, alpha=alpha,
                       detail=f"{_VERDICTS[code]}: {reasons}")
