"""Regression claims: the run is equivalent to its declared baseline run."""

from __future__ import annotations

from collections.abc import Callable

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

CLAIM_FAMILY = "regression"


def test_claim(claim: tuple[Protocol, ClaimSpec],
               judge: Callable[[tuple[Protocol, ClaimSpec]], ClaimResult]) -> None:
    """No verdict moved beyond the declared margin against the baseline run (paired McNemar
    and TOST on the shared pairs, through ``faceattr compare``)."""
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"
