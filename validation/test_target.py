"""Target-sanity claims: the explained scalar varies with the probe."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "target"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """The attributed scalar is the verification score and responds to the probe
    (PITFALLS.md #5)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
