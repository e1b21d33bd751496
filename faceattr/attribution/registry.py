"""The one place to add an attribution method: a frozen name -> class registry."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from faceattr.attribution.base import AttributionMethod
from faceattr.attribution.controls import ConstantMap, InvertedMap, OracleMap, RandomMap
from faceattr.attribution.gradient import Saliency
from faceattr.config import TableReader

__all__ = ["METHODS", "build_method"]

METHODS: Mapping[str, type[AttributionMethod]] = MappingProxyType({
    cls.info.name: cls for cls in (Saliency, OracleMap, InvertedMap, RandomMap, ConstantMap)
})


def build_method(method_id: str, name: str, params: Mapping[str, Any], where: str
                 ) -> AttributionMethod:
    """Instantiate registry entry ``name`` with its protocol parameters (strictly read)."""
    if name not in METHODS:
        from faceattr.config import ProtocolError

        raise ProtocolError(f"{where}: method = {name!r} is not registered; "
                            f"known: {', '.join(sorted(METHODS))}")
    return METHODS[name].from_params(method_id, TableReader(params, where))
