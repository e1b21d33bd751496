"""Guards: no degenerate per-pair metric, no duplicate methods."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "guard"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """No per-pair metric is constant across pairs and no two methods share maps
    (PITFALLS.md #1, #20)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
