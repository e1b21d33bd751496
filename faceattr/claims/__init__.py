"""Claims: pre-registered scientific statements judged on a run's artefacts."""

from faceattr.claims.base import ClaimResult, ClaimSpec, RunArtefacts
from faceattr.claims.registry import CLAIM_KINDS, evaluate_claim

__all__ = ["CLAIM_KINDS", "ClaimResult", "ClaimSpec", "RunArtefacts", "evaluate_claim"]
