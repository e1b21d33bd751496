"""K sufficiency: K meets the Hoeffding requirement."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "k_sufficiency"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """K counterfactuals per region reach the declared precision of the mean drift (Hoeffding)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
