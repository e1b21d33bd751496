"""The one place to add an attribution method: a frozen name -> class registry."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from faceattr.attribution.base import AttributionMethod
from faceattr.attribution.cam import GradCAM, LayerCAM
from faceattr.attribution.controls import (
    ConstantMap,
    InvertedMap,
    NoisyOracleMap,
    OracleMap,
    RandomMap,
)
from faceattr.attribution.gradient import GradientXInput, Saliency, SmoothGrad
from faceattr.attribution.integrated import GeodesicIntegratedGradients, IntegratedGradients
from faceattr.attribution.perturbation import LIME, KernelSHAP, Occlusion
from faceattr.attribution.propagation import LRP, DeepLift
from faceattr.config import TableReader

__all__ = ["METHODS", "RegisteredInvertedMap", "build_method"]

_CLASSES: tuple[type[AttributionMethod], ...] = (
    Saliency, GradientXInput, SmoothGrad, IntegratedGradients, GeodesicIntegratedGradients,
    GradCAM, LayerCAM, DeepLift, LRP, Occlusion, KernelSHAP, LIME,
    OracleMap, NoisyOracleMap, InvertedMap, RandomMap, ConstantMap)


class RegisteredInvertedMap(InvertedMap):
    """:class:`InvertedMap` whose ``of`` names any other registered method.

    The registry injects the bases (controls does not import the registry: no cycle).
    """

    bases: ClassVar[Mapping[str, type[AttributionMethod]]] = MappingProxyType({
        cls.info.name: cls for cls in _CLASSES if cls is not InvertedMap})


METHODS: Mapping[str, type[AttributionMethod]] = MappingProxyType({
    cls.info.name: RegisteredInvertedMap if cls is InvertedMap else cls for cls in _CLASSES
})


def build_method(method_id: str, name: str, params: Mapping[str, Any], where: str
                 ) -> AttributionMethod:
    """Instantiate registry entry ``name`` with its protocol parameters (strictly read)."""
    if name not in METHODS:
        from faceattr.config import ProtocolError

        raise ProtocolError(f"{where}: method = {name!r} is not registered; "
                            f"known: {', '.join(sorted(METHODS))}")
    return METHODS[name].from_params(method_id, TableReader(params, where))
