"""Artefact controls (ROAD): verdicts are not explained by the removed shape or by blur."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "artefact"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """Under every fill, few passes are explained by S_high's shape alone, and a blurred
    random map stays at chance."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
