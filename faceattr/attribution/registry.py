"""Attribution methods by name: the built-ins, entry points (``faceattr.methods``) and import
paths, through the one registry mechanism (:mod:`faceattr.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from faceattr.attribution.attention_cam import BranchAttentionCAM
from faceattr.attribution.base import AttributionMethod, MethodInfo
from faceattr.attribution.biometric import BiometricGradCAM, SpatialBiometricGradCAM
from faceattr.attribution.cam import GradCAM, LayerCAM
from faceattr.attribution.controls import (
    ConstantMap,
    InvertedMap,
    NoisyOracleMap,
    OracleMap,
    RandomMap,
)
from faceattr.attribution.gradient import GradientXInput, Saliency, SmoothGrad
from faceattr.attribution.guided import GuidedBackprop, GuidedGradCAM
from faceattr.attribution.integrated import GeodesicIntegratedGradients, IntegratedGradients
from faceattr.attribution.perturbation import LIME, KernelSHAP, Occlusion
from faceattr.attribution.propagation import LRP, DeepLift
from faceattr.attribution.rollout import AttentionRollout, GradientAttentionRollout
from faceattr.config import TableReader
from faceattr.registry import Registry

__all__ = ["METHODS", "METHOD_REGISTRY", "RegisteredInvertedMap", "build_method",
           "method_class"]

_CLASSES: tuple[type[AttributionMethod], ...] = (
    Saliency, GradientXInput, SmoothGrad, IntegratedGradients, GeodesicIntegratedGradients,
    GradCAM, LayerCAM, BiometricGradCAM, SpatialBiometricGradCAM, DeepLift, LRP, Occlusion,
    KernelSHAP, LIME, GuidedBackprop, GuidedGradCAM,
    AttentionRollout, GradientAttentionRollout, BranchAttentionCAM,
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


def _check_method(name: str, obj: object) -> type[AttributionMethod]:
    if not (isinstance(obj, type) and issubclass(obj, AttributionMethod)):
        raise TypeError(f"{obj!r} is not a subclass of faceattr.AttributionMethod")
    if not isinstance(getattr(obj, "info", None), MethodInfo):
        raise TypeError(f"{obj.__name__} has no `info = MethodInfo(...)` class attribute")
    return obj


#: Built-ins (above), entry points in group ``faceattr.methods`` and import paths.
METHOD_REGISTRY: Registry[type[AttributionMethod]] = Registry(
    kind="method", builtins=lambda: METHODS, check=_check_method)


def method_class(name: str, where: str) -> type[AttributionMethod]:
    """The class ``name`` names: a registered name or ``"package.module:Class"``."""
    return METHOD_REGISTRY.resolve(name, where)


def build_method(method_id: str, name: str, params: Mapping[str, Any], where: str
                 ) -> AttributionMethod:
    """Instantiate method ``name`` with its protocol parameters (strictly read)."""
    return method_class(name, where).from_params(method_id, TableReader(params, where))
