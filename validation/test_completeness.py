"""IG completeness claims (Sundararajan et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "completeness"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """IG-family attributions add up to the change of the explained score."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
