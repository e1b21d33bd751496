"""Attribution methods: each explains the verification score ``s(x_a, x_b)`` w.r.t. ``x_a``."""

from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.attribution.registry import METHODS, build_method

__all__ = ["METHODS", "AttributionBatch", "AttributionMethod", "MethodInfo", "build_method"]
