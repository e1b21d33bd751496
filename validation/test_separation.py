"""FR separation claims per Theorem 3.5 (paired, Holm-corrected)."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "separation"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """Method A is falsified less often than method B on the same pairs (exact McNemar, Holm)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
