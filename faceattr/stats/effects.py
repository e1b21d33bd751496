"""Effect sizes for two proportions."""

from __future__ import annotations

import math

from faceattr.stats.records import check_probability

__all__ = ["cohens_h"]


def cohens_h(rate_a: float, rate_b: float) -> float:
    """Cohen's h, ``2 asin(sqrt(rate_a)) - 2 asin(sqrt(rate_b))``.

    Defined on all of [0, 1] (including FR of 0 or 1); antisymmetric in its arguments.

    References
    ----------
    .. [1] J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed.,
       Lawrence Erlbaum, 1988, ch. 6.
    """
    pa = check_probability("rate_a", rate_a)
    pb = check_probability("rate_b", rate_b)
    return 2.0 * math.asin(math.sqrt(pa)) - 2.0 * math.asin(math.sqrt(pb))
