"""Determinism claims: identical records across processes, method orders and batch sizes."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "determinism"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """Identical seeds give byte-identical records in fresh processes whatever the method
    order and batch size; another seed changes the stochastic fields (PITFALLS.md #14)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
