"""Model-gate claims: the model verifies faces on the run's pairs."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "gate"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """The model separates genuine from impostor pairs before any attribution is trusted
    (PITFALLS.md #16)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
