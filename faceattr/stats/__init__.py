"""faceattr statistics: thin typed wrappers over statsmodels and scipy (never imports torch)."""

from __future__ import annotations

from faceattr.stats.proportions import (
    ProportionBound,
    ProportionInterval,
    ProportionMethod,
    proportion_bound,
    proportion_from_outcomes,
    proportion_interval,
)

__all__ = [
    "ProportionBound",
    "ProportionInterval",
    "ProportionMethod",
    "proportion_bound",
    "proportion_from_outcomes",
    "proportion_interval",
]
