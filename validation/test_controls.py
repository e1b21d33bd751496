"""Control claims: oracle, inverted, random and constant maps give their known answers."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "control"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """The falsification test gives each control map its known answer (ARCHITECTURE.md,
    Controls): oracle rarely falsified, inverted almost always, random at chance, constant
    untestable."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
