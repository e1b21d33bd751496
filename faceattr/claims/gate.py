"""Model-gate claim: the model verifies faces on the run's pairs (PITFALLS.md #16)."""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.claims.base import ClaimResult, RunArtefacts
from faceattr.config import TableReader

__all__ = ["ModelGateParams", "check_model_gate", "read_model_gate"]


@dataclass(frozen=True, slots=True)
class ModelGateParams:
    """``model_gate``: verification ROC AUC on the pairs >= ``min_auc``."""

    min_auc: float


def read_model_gate(reader: TableReader, method_ids: set[str]) -> ModelGateParams:
    """Parse ``model_gate`` parameters."""
    del method_ids
    params = ModelGateParams(min_auc=reader.fraction("min_auc"))
    reader.finish()
    return params


def check_model_gate(claim_id: str, params: ModelGateParams, run: RunArtefacts) -> ClaimResult:
    """The verification model separates genuine from impostor pairs: ROC AUC of the clean
    scores on the run's pairs is at least ``min_auc`` (Hanley & McNeil 1982 for the AUC)."""
    gate = run.summary.gate
    passed = gate.auc >= params.min_auc
    return ClaimResult(claim_id=claim_id, kind="model_gate", family="gate",
                       statement=f"{gate.model}: verification ROC AUC on the pairs >= "
                                 f"{params.min_auc:g}",
                       passed=passed, statistic="ROC AUC", observed=gate.auc, comparison=">=",
                       threshold=params.min_auc, n=gate.n_genuine + gate.n_impostor,
                       interval_low=None, interval_high=None, interval_method=None,
                       alpha=next(iter(run.summary.methods.values())).fr_itt.alpha,
                       detail=f"AUC {gate.auc:.4f} over {gate.n_genuine} genuine and "
                              f"{gate.n_impostor} impostor pairs")
