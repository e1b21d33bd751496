"""The strict reader of one declared claim's parameters.

Below both the claim registry and the claim kinds, so that a kind which reads its siblings'
parameters (a family correction such as Holm's) does not import the registry that imports it.
"""

from __future__ import annotations

from faceattr.claims.base import ClaimSpec
from faceattr.config import TableReader

__all__ = ["spec_reader"]


def spec_reader(spec: ClaimSpec) -> TableReader:
    """A strict reader over ``spec``'s parameters, located as ``claim <id>`` in errors."""
    return TableReader(spec.params_dict(), f"claim {spec.id}")
