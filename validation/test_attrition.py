"""Attrition claims: few pairs end in an error status."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "attrition"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """Errors are counted, never dropped, and stay rare (PITFALLS.md #3)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
