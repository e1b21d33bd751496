"""Adebayo model-parameter randomisation claims (cascading and independent)."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "randomisation"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """A faithful map changes when the model's parameters are randomised (Adebayo et al.,
    "Sanity Checks for Saliency Maps", NeurIPS 2018); declared insensitive methods are
    expected failures, and an unexpected pass fails."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
