"""Binomial proportion intervals for falsification rates (FR) over pair verdicts.

Every option is explicit and keyword-only: statsmodels' ``proportion_confint`` defaults to the
Wald (``"normal"``) interval, which this module never uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy import stats as _sps
from statsmodels.stats.proportion import proportion_confint

__all__ = [
    "ProportionBound",
    "ProportionInterval",
    "ProportionMethod",
    "check_alpha",
    "check_count_n",
    "proportion_bound",
    "proportion_from_outcomes",
    "proportion_interval",
]

ProportionMethod = Literal["wilson", "clopper-pearson"]
_METHODS: tuple[str, ...] = get_args(ProportionMethod)
# faceattr name -> statsmodels name; passed explicitly, never left to the "normal" default.
_SM_METHOD: dict[str, str] = {"wilson": "wilson", "clopper-pearson": "beta"}


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float after checking ``0 < alpha < 1`` (a significance level)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__}")
    a = float(alpha)
    if not (math.isfinite(a) and 0.0 < a < 1.0):
        raise ValueError(f"alpha must satisfy 0 < alpha < 1, got {alpha!r}")
    return a


def _check_int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer count, got {type(value).__name__} {value!r}")
    return int(value)


def check_count_n(count: object, n: object) -> tuple[int, int]:
    """Validate a binomial ``(count, n)``: integers with ``n >= 1`` and ``0 <= count <= n``."""
    c = _check_int("count", count)
    m = _check_int("n", n)
    if m == 0:
        raise ValueError("n = 0: no pairs, a proportion is undefined")
    if m < 0:
        raise ValueError(f"n must be >= 1, got {m}")
    if not 0 <= c <= m:
        raise ValueError(f"count must satisfy 0 <= count <= n, got count={c}, n={m}")
    return c, m


def _check_method(method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _check_unit(name: str, value: float) -> None:
    if not isinstance(value, float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite float, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (a fraction, not a percentage), got {value!r}")


@dataclass(frozen=True, slots=True)
class ProportionInterval:
    """A two-sided interval for a binomial proportion (e.g. a falsification rate).

    Attributes
    ----------
    estimate : float
        ``count / n``, a fraction in [0, 1].
    low, high : float
        Two-sided ``1 - alpha`` interval, ``0 <= low <= estimate <= high <= 1``.
    count, n : int
        Successes (e.g. falsified pairs) and trials (pairs), ``n >= 1``.
    method : str
        ``"wilson"`` or ``"clopper-pearson"``.
    alpha : float
        Significance level, ``0 < alpha < 1`` (confidence level is ``1 - alpha``).
    """

    estimate: float
    low: float
    high: float
    count: int
    n: int
    method: str
    alpha: float

    def __post_init__(self) -> None:
        check_count_n(self.count, self.n)
        check_alpha(self.alpha)
        _check_method(self.method)
        for name in ("estimate", "low", "high"):
            _check_unit(name, getattr(self, name))
        if not self.low <= self.estimate <= self.high:
            raise ValueError(
                f"interval must contain its estimate: low={self.low!r}, "
                f"estimate={self.estimate!r}, high={self.high!r}"
            )
        if not math.isclose(self.estimate, self.count / self.n, rel_tol=0.0, abs_tol=1e-12):
            raise ValueError(
                f"estimate {self.estimate!r} != count / n = {self.count}/{self.n}"
            )

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def to_json(self) -> dict[str, float | int | str]:
        """A JSON-safe dict (no NaN is possible: every float is validated finite)."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "count": self.count,
            "n": self.n,
            "method": self.method,
            "alpha": self.alpha,
        }


def proportion_interval(
    count: int, n: int, *, method: ProportionMethod, alpha: float
) -> ProportionInterval:
    """Two-sided ``1 - alpha`` interval for a binomial proportion ``count / n``.

    Thin wrapper over ``statsmodels.stats.proportion.proportion_confint`` with the method passed
    explicitly (``"wilson"`` or ``"beta"``); statsmodels' default Wald interval is never used.

    Parameters
    ----------
    count : int
        Number of successes, ``0 <= count <= n``.
    n : int
        Number of trials, ``n >= 1`` (``n = 0`` raises: no pairs).
    method : {"wilson", "clopper-pearson"}
        Wilson score interval (Wilson 1927) or the exact Clopper-Pearson interval
        (Clopper & Pearson 1934; coverage at least ``1 - alpha``, conservative).
    alpha : float
        Significance level, ``0 < alpha < 1``.

    Returns
    -------
    ProportionInterval

    References
    ----------
    .. [1] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", JASA 22(158):209-212, 1927.
    .. [2] C. J. Clopper and E. S. Pearson, "The use of confidence or fiducial limits
       illustrated in the case of the binomial", Biometrika 26(4):404-413, 1934.
    """
    c, m = check_count_n(count, n)
    a = check_alpha(alpha)
    _check_method(method)
    low, high = proportion_confint(
        c, m, alpha=a, method=_SM_METHOD[method], alternative="two-sided"
    )
    est = c / m
    low_f = 0.0 if c == 0 else min(max(float(low), 0.0), est)
    high_f = 1.0 if c == m else max(min(float(high), 1.0), est)
    return ProportionInterval(
        estimate=est, low=low_f, high=high_f, count=c, n=m, method=method, alpha=a
    )


def proportion_from_outcomes(
    outcomes: Sequence[bool] | NDArray[np.bool_],
    *,
    method: ProportionMethod,
    alpha: float,
) -> ProportionInterval:
    """Interval for the share of ``True`` in binary per-pair outcomes.

    Refuses anything that is not binary (floats such as 0.5, percentages, NaN): a binomial
    interval on means of percentages is failure mode #9 in PITFALLS.md.

    Parameters
    ----------
    outcomes : sequence of bool or bool ndarray
        One verdict per pair. ``bool``/``numpy.bool_`` values only; integer 0/1 is also
        refused so that a count or a percentage cannot be passed by mistake.
    method, alpha
        As in :func:`proportion_interval`.
    """
    arr = np.asarray(outcomes)
    if arr.ndim != 1:
        raise ValueError(f"outcomes must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("n = 0: no pairs, a proportion is undefined")
    if arr.dtype != np.bool_:
        raise ValueError(
            "outcomes must be binary (bool per pair), got dtype "
            f"{arr.dtype} with values such as {arr[:3].tolist()!r}; a binomial interval "
            "refuses non-binary input (fractions, percentages, means)"
        )
    return proportion_interval(int(arr.sum()), int(arr.size), method=method, alpha=alpha)


@dataclass(frozen=True, slots=True)
class ProportionBound:
    """A one-sided ``1 - alpha`` confidence bound for a binomial proportion.

    ``side="upper"``: the true proportion is <= ``bound`` with confidence ``1 - alpha``;
    ``side="lower"``: the true proportion is >= ``bound``.
    """

    estimate: float
    bound: float
    side: str
    count: int
    n: int
    method: str
    alpha: float

    def __post_init__(self) -> None:
        check_count_n(self.count, self.n)
        check_alpha(self.alpha)
        _check_method(self.method)
        if self.side not in ("upper", "lower"):
            raise ValueError(f"side must be 'upper' or 'lower', got {self.side!r}")
        for name in ("estimate", "bound"):
            _check_unit(name, getattr(self, name))
        ok = self.bound >= self.estimate if self.side == "upper" else self.bound <= self.estimate
        if not ok:
            raise ValueError(
                f"{self.side} bound {self.bound!r} on the wrong side of estimate {self.estimate!r}"
            )

    def to_json(self) -> dict[str, float | int | str]:
        """A JSON-safe dict."""
        return {
            "estimate": self.estimate,
            "bound": self.bound,
            "side": self.side,
            "count": self.count,
            "n": self.n,
            "method": self.method,
            "alpha": self.alpha,
        }


def proportion_bound(
    count: int,
    n: int,
    *,
    side: Literal["upper", "lower"],
    method: ProportionMethod,
    alpha: float,
) -> ProportionBound:
    """One-sided ``1 - alpha`` bound, computed from closed forms (not statsmodels' ``alternative``).

    Clopper-Pearson: upper ``= beta.ppf(1 - alpha, count + 1, n - count)`` (1 if ``count = n``),
    lower ``= beta.ppf(alpha, count, n - count + 1)`` (0 if ``count = 0``).
    Wilson: the score bound with ``z = Phi^{-1}(1 - alpha)``,
    ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``.

    References
    ----------
    .. [1] E. B. Wilson, JASA 22(158):209-212, 1927.
    .. [2] C. J. Clopper and E. S. Pearson, Biometrika 26(4):404-413, 1934.
    """
    c, m = check_count_n(count, n)
    a = check_alpha(alpha)
    _check_method(method)
    if side not in ("upper", "lower"):
        raise ValueError(f"side must be 'upper' or 'lower', got {side!r}")
    est = c / m
    if method == "clopper-pearson":
        if side == "upper":
            b = 1.0 if c == m else float(_sps.beta.ppf(1.0 - a, c + 1, m - c))
        else:
            b = 0.0 if c == 0 else float(_sps.beta.ppf(a, c, m - c + 1))
    else:
        z = float(_sps.norm.ppf(1.0 - a))
        centre = est + z * z / (2 * m)
        half = z * math.sqrt(est * (1.0 - est) / m + z * z / (4 * m * m))
        denom = 1.0 + z * z / m
        b = (centre + half) / denom if side == "upper" else (centre - half) / denom
    if side == "upper":
        b = 1.0 if c == m else min(max(b, est), 1.0)
    else:
        b = 0.0 if c == 0 else max(min(b, est), 0.0)
    return ProportionBound(
        estimate=est, bound=b, side=side, count=c, n=m, method=method, alpha=a
    )
