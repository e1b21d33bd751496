"""Uniformity claims: few maps of a method are trivial (cannot rank pixels)."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "uniformity"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """A method's maps can rank pixels on almost every pair: the share of trivial maps is bounded
    (PITFALLS.md #4)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
