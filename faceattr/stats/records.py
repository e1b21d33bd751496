"""Frozen result records shared by the statistics modules.

Every record validates itself on construction (finite floats, ranges) and has a ``to_json()``
that never emits NaN: an undefined statistic is ``None`` with an ``undefined_reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Alternative",
    "DifferenceInterval",
    "Direction",
    "PairedTable",
    "TestResult",
    "check_finite",
    "check_optional_finite",
    "check_probability",
]

Alternative = Literal["two-sided", "larger", "smaller"]
#: Which arm the data favour: ``"a>b"`` (arm a larger), ``"a<b"`` or ``"none"`` (tie).
Direction = Literal["a>b", "a<b", "none"]
_ALTERNATIVES = ("two-sided", "larger", "smaller")
_DIRECTIONS = ("a>b", "a<b", "none")


def check_finite(name: str, value: object) -> float:
    """Return ``value`` as float, raising unless it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_optional_finite(name: str, value: object) -> float | None:
    """As :func:`check_finite` but ``None`` is allowed (an undefined statistic)."""
    return None if value is None else check_finite(name, value)


def check_probability(name: str, value: object) -> float:
    """A finite float in [0, 1]."""
    v = check_finite(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def _check_alpha(alpha: float) -> None:
    a = check_finite("alpha", alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must satisfy 0 < alpha < 1, got {alpha!r}")


def direction_of(diff: float) -> Direction:
    """``"a>b"`` if ``diff > 0``, ``"a<b"`` if ``diff < 0``, else ``"none"``."""
    if diff > 0:
        return "a>b"
    if diff < 0:
        return "a<b"
    return "none"


@dataclass(frozen=True, slots=True)
class TestResult:
    """A hypothesis test: statistic, p-value and the direction the data point.

    Attributes
    ----------
    method : str
        Name of the test, e.g. ``"mcnemar-exact"``.
    statistic, p_value : float or None
        ``None`` exactly when the statistic is undefined; then ``undefined_reason`` says why.
    alternative : {"two-sided", "larger", "smaller"}
        ``"larger"`` means the alternative "arm a > arm b".
    direction : {"a>b", "a<b", "none"}
        Which arm the observed data favour (independent of significance).
    n : int
        Number of pairs (paired) or total observations used.
    alpha : float
        Significance level at which ``reject`` is decided (``p_value <= alpha``).
    df : float or None
        Degrees of freedom where the reference distribution has them.
    undefined_reason : str or None
        Why the statistic is undefined; ``None`` when it is defined.
    """

    __test__ = False  # not a pytest class

    method: str
    statistic: float | None
    p_value: float | None
    alternative: str
    direction: str
    n: int
    alpha: float
    df: float | None = None
    undefined_reason: str | None = None

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if self.alternative not in _ALTERNATIVES:
            raise ValueError(
                f"alternative must be one of {_ALTERNATIVES}, got {self.alternative!r}"
            )
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {self.direction!r}")
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        check_optional_finite("statistic", self.statistic)
        check_optional_finite("df", self.df)
        if self.p_value is not None:
            check_probability("p_value", self.p_value)
        undefined = self.p_value is None or self.statistic is None
        if undefined and not self.undefined_reason:
            raise ValueError("an undefined statistic or p-value needs an undefined_reason")
        if not undefined and self.undefined_reason is not None:
            raise ValueError("undefined_reason given for a defined statistic")

    @property
    def reject(self) -> bool | None:
        """``p_value <= alpha``; ``None`` when the p-value is undefined."""
        return None if self.p_value is None else self.p_value <= self.alpha

    def to_json(self) -> dict[str, float | int | str | bool | None]:
        """A JSON-safe dict (``None`` for undefined values, never NaN)."""
        return {
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "alternative": self.alternative,
            "direction": self.direction,
            "n": self.n,
            "alpha": self.alpha,
            "df": self.df,
            "reject": self.reject,
            "undefined_reason": self.undefined_reason,
        }


@dataclass(frozen=True, slots=True)
class PairedTable:
    """2x2 table of two binary arms on the same pairs.

    ``n_a_only`` counts pairs where arm a is True and arm b is False (discordant, favours a).
    """

    n_both: int
    n_a_only: int
    n_b_only: int
    n_neither: int

    def __post_init__(self) -> None:
        for name in ("n_both", "n_a_only", "n_b_only", "n_neither"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if self.n == 0:
            raise ValueError("n = 0: no pairs")

    @property
    def n(self) -> int:
        """Number of pairs."""
        return self.n_both + self.n_a_only + self.n_b_only + self.n_neither

    @property
    def n_discordant(self) -> int:
        """Pairs where the arms disagree."""
        return self.n_a_only + self.n_b_only

    @property
    def rate_a(self) -> float:
        """Share of pairs where arm a is True."""
        return (self.n_both + self.n_a_only) / self.n

    @property
    def rate_b(self) -> float:
        """Share of pairs where arm b is True."""
        return (self.n_both + self.n_b_only) / self.n

    def to_json(self) -> dict[str, int]:
        """A JSON-safe dict."""
        return {
            "n_both": self.n_both,
            "n_a_only": self.n_a_only,
            "n_b_only": self.n_b_only,
            "n_neither": self.n_neither,
        }


@dataclass(frozen=True, slots=True)
class DifferenceInterval:
    """Difference of two proportions ``rate_a - rate_b`` with a ``1 - alpha`` interval.

    Attributes
    ----------
    estimate, low, high : float
        In [-1, 1] with ``low <= estimate <= high``.
    rate_a, rate_b : float
        The two proportions.
    n_a, n_b : int
        Sample sizes (equal and the number of pairs when ``paired``).
    paired : bool
        Whether the arms share pairs.
    cohens_h : float
        ``2 asin(sqrt(rate_a)) - 2 asin(sqrt(rate_b))`` (Cohen 1988).
    method : str
        Interval method, e.g. ``"newcombe-hybrid-score"``.
    alpha : float
        Significance level.
    """

    estimate: float
    low: float
    high: float
    rate_a: float
    rate_b: float
    n_a: int
    n_b: int
    paired: bool
    cohens_h: float
    method: str
    alpha: float

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        for name in ("estimate", "low", "high"):
            v = check_finite(name, getattr(self, name))
            if not -1.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [-1, 1], got {v!r}")
        check_probability("rate_a", self.rate_a)
        check_probability("rate_b", self.rate_b)
        check_finite("cohens_h", self.cohens_h)
        if not self.low <= self.estimate <= self.high:
            raise ValueError(
                f"interval must contain its estimate: {self.low!r} <= {self.estimate!r} "
                f"<= {self.high!r} fails"
            )
        if self.n_a < 1 or self.n_b < 1:
            raise ValueError(f"n_a, n_b must be >= 1, got {self.n_a}, {self.n_b}")
        if self.paired and self.n_a != self.n_b:
            raise ValueError("paired arms must have equal n")

    def to_json(self) -> dict[str, float | int | str | bool]:
        """A JSON-safe dict."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "rate_a": self.rate_a,
            "rate_b": self.rate_b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "paired": self.paired,
            "cohens_h": self.cohens_h,
            "method": self.method,
            "alpha": self.alpha,
        }
