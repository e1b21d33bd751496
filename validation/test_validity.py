"""Discriminative validity: the test's outcome ranks maps as the ground truth does."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "validity"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """Across maps of known quality (dose-response family) or the registry's methods, the
    falsification outcome's rank correlation with ground-truth quality meets its threshold."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
