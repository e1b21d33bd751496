"""Intervals for means of per-pair quantities (margin, pairwise_violation_frac).

Two estimands, two methods, both explicit: the pair bootstrap (``scipy.stats.bootstrap``,
resampling pairs, with an explicit ``np.random.Generator``) and the Student t interval.
Binomial intervals are for binary verdicts only (:mod:`faceattr.stats.proportions`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy import stats as _sps

from faceattr.stats.records import check_finite, check_optional_finite

__all__ = ["MeanInterval", "MeanMethod", "as_float_array", "mean_interval"]

MeanMethod = Literal["bootstrap-bca", "bootstrap-percentile", "t"]
_METHODS: tuple[str, ...] = get_args(MeanMethod)
_SCIPY_BOOT = {"bootstrap-bca": "BCa", "bootstrap-percentile": "percentile"}
DEGENERATE_REASON = (
    "all values are equal: the interval collapses to the point; a metric that is constant "
    "across pairs is suspicious (degenerate-distribution guard)"
)


@dataclass(frozen=True, slots=True)
class MeanInterval:
    """Mean of a per-pair quantity with a two-sided ``1 - alpha`` interval.

    Attributes
    ----------
    estimate : float
        Sample mean.
    low, high : float or None
        Interval bounds; ``None`` only when the interval is undefined (``undefined_reason``).
    n : int
        Number of pairs.
    method : {"bootstrap-bca", "bootstrap-percentile", "t"}
    alpha : float
    n_resamples : int or None
        Bootstrap resamples (``None`` for the t interval).
    degenerate : bool
        True when all values are equal (the interval is the point ``[estimate, estimate]``).
    undefined_reason : str or None
    """

    estimate: float
    low: float | None
    high: float | None
    n: int
    method: str
    alpha: float
    n_resamples: int | None
    degenerate: bool
    undefined_reason: str | None = None

    def __post_init__(self) -> None:
        check_finite("estimate", self.estimate)
        check_optional_finite("low", self.low)
        check_optional_finite("high", self.high)
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        a = check_finite("alpha", self.alpha)
        if not 0.0 < a < 1.0:
            raise ValueError(f"alpha must satisfy 0 < alpha < 1, got {self.alpha!r}")
        if self.n < 2:
            raise ValueError(f"n must be >= 2, got {self.n}")
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high must both be defined or both be None")
        if self.low is None:
            if not self.undefined_reason:
                raise ValueError("an undefined interval needs an undefined_reason")
        else:
            assert self.high is not None
            if self.undefined_reason is not None:
                raise ValueError("undefined_reason given for a defined interval")
            if not self.low <= self.high:
                raise ValueError(f"low {self.low!r} > high {self.high!r}")

    def to_json(self) -> dict[str, float | int | str | bool | None]:
        """A JSON-safe dict (``None`` for undefined bounds, never NaN)."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "method": self.method,
            "alpha": self.alpha,
            "n_resamples": self.n_resamples,
            "degenerate": self.degenerate,
            "undefined_reason": self.undefined_reason,
        }


def as_float_array(
    values: Sequence[float] | NDArray[np.floating], *, name: str
) -> NDArray[np.float64]:
    """1-D float64 array of finite values (refuses bool: a binary verdict is a proportion)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        raise ValueError(
            f"{name}: got booleans; binary verdicts take a proportion interval, not a mean"
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        n_bad = int((~np.isfinite(out)).sum())
        raise ValueError(f"{name} must be finite (no NaN or inf), got {n_bad} non-finite")
    return out


def mean_interval(
    values: Sequence[float] | NDArray[np.floating],
    *,
    method: MeanMethod,
    alpha: float,
    rng: np.random.Generator | None,
    n_resamples: int | None,
) -> MeanInterval:
    """Two-sided ``1 - alpha`` interval for the mean of per-pair values.

    Parameters
    ----------
    values : sequence of float
        One value per pair (at least 2).
    method : {"bootstrap-bca", "bootstrap-percentile", "t"}
        Pair bootstrap via ``scipy.stats.bootstrap`` (BCa, Efron 1987, or percentile), or the
        Student t interval ``mean +- t_{1-alpha/2, n-1} s / sqrt(n)``.
    alpha : float
        Significance level.
    rng : numpy.random.Generator or None
        Required for the bootstrap (passed as ``rng=``); must be ``None`` for ``"t"``.
    n_resamples : int or None
        Required for the bootstrap; must be ``None`` for ``"t"``.

    Returns
    -------
    MeanInterval
        All-equal values give the point interval with ``degenerate=True``. If scipy cannot
        compute a BCa interval (e.g. too few distinct resample means), the bounds are ``None``
        with ``undefined_reason``.

    References
    ----------
    .. [1] B. Efron, "Better bootstrap confidence intervals", JASA 82(397):171-185, 1987.
    .. [2] B. Efron and R. J. Tibshirani, "An Introduction to the Bootstrap", 1993.
    """
    x = as_float_array(values, name="values")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    a = check_finite("alpha", alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must satisfy 0 < alpha < 1, got {alpha!r}")
    n = int(x.size)
    if n == 0:
        raise ValueError("n = 0: no pairs, a mean is undefined")
    if n < 2:
        raise ValueError(f"n = {n}: an interval for a mean needs at least 2 pairs")
    boot = method != "t"
    if boot:
        if rng is None or not isinstance(rng, np.random.Generator):
            raise TypeError("the bootstrap needs an explicit np.random.Generator as rng=")
        if n_resamples is None or isinstance(n_resamples, bool) or n_resamples < 100:
            raise ValueError(f"n_resamples must be an int >= 100, got {n_resamples!r}")
    elif rng is not None or n_resamples is not None:
        raise ValueError("method='t' takes rng=None and n_resamples=None")
    est = float(np.mean(x))
    if np.all(x == x[0]):
        v = float(x[0])
        return MeanInterval(
            estimate=v, low=v, high=v, n=n, method=method, alpha=a,
            n_resamples=n_resamples, degenerate=True,
        )
    if not boot:
        s = float(np.std(x, ddof=1))
        q = float(_sps.t.ppf(1.0 - a / 2.0, n - 1))
        half = q * s / math.sqrt(n)
        return MeanInterval(
            estimate=est, low=est - half, high=est + half, n=n, method=method, alpha=a,
            n_resamples=None, degenerate=False,
        )
    assert rng is not None
    assert n_resamples is not None
    try:
        with warnings.catch_warnings():
            # Local only: scipy signals an incomputable BCa interval by a warning and NaN.
            warnings.simplefilter("error", _sps.DegenerateDataWarning)
            warnings.simplefilter("error", RuntimeWarning)
            res = _sps.bootstrap(
                (x,), np.mean, n_resamples=int(n_resamples), batch=None, vectorized=True,
                paired=False, axis=-1, confidence_level=1.0 - a, alternative="two-sided",
                method=_SCIPY_BOOT[method], rng=rng,
            )
        low = float(res.confidence_interval.low)
        high = float(res.confidence_interval.high)
    except (_sps.DegenerateDataWarning, RuntimeWarning) as exc:
        reason = f"scipy.stats.bootstrap could not compute the interval: {exc}".splitlines()[0]
        return MeanInterval(
            estimate=est, low=None, high=None, n=n, method=method, alpha=a,
            n_resamples=n_resamples, degenerate=False, undefined_reason=reason,
        )
    if not (math.isfinite(low) and math.isfinite(high)):
        return MeanInterval(
            estimate=est, low=None, high=None, n=n, method=method, alpha=a,
            n_resamples=n_resamples, degenerate=False,
            undefined_reason="scipy.stats.bootstrap returned a non-finite bound",
        )
    return MeanInterval(
        estimate=est, low=low, high=high, n=n, method=method, alpha=a,
        n_resamples=n_resamples, degenerate=False,
    )
