"""Calibration rules: Theorem 3.5's thresholds from a model's own scales.

Theorem 3.5 keeps an attribution when removing its most relevant pixels ``S_high`` moves the
probe's embedding by more than ``tau_high`` and removing its least relevant pixels ``S_low``
moves it by less than ``tau_low`` (both by one-sided tests), with ``tau_high - tau_low >=
epsilon``. The thresholds are distances on the model's embedding sphere, so they belong to a
model: a threshold chosen for one network says nothing about another.

``genuine_angle_quantiles`` reads both from the model on a calibration split whose identities
the test split never uses:

- ``tau_high``: the ``genuine_quantile`` (default the median) of the angles between the two
  views of each genuine calibration pair, ``arccos <f(a), f(b)>``. Removing S_high must move a
  face further than a typical change of view of the same person: the pixels then carry the
  identity evidence on the scale that decides verification.
- ``tau_low``: the ``blind_quantile`` (default the median) of the mean drift of a *blind*
  removal on each calibration pair: the same area (``q_frac``), the same fill, noise and K,
  at pixels drawn uniformly at random (the ``random`` control's regions). Removing S_low must
  move the face less than removing pixels chosen without looking at the model: the pixels
  called irrelevant are less relevant than average ones.
- ``epsilon``: the sum of the two thresholds' distribution-free ``1 - alpha`` interval
  half-widths (order statistics, Conover 1999, via :func:`scipy.stats.quantile_test`): the gap
  ``tau_high - tau_low`` must exceed what the finite calibration split can resolve. A split
  whose thresholds do not clear it is refused (one line with both numbers).

References
----------
.. [1] W. J. Conover, *Practical Nonparametric Statistics*, 3rd ed., Wiley, 1999, sec. 3.2
   (confidence interval for a quantile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import quantile_test

from faceattr.errors import InputError

__all__ = ["QuantileEstimate", "Thresholds", "genuine_angle_quantiles", "quantile_estimate"]


@dataclass(frozen=True, slots=True)
class QuantileEstimate:
    """A sample quantile (radians) with its distribution-free ``1 - alpha`` interval."""

    quantile: float
    value_rad: float
    low_rad: float
    high_rad: float
    n: int

    @property
    def half_width_rad(self) -> float:
        """Half the interval's width."""
        return (self.high_rad - self.low_rad) / 2.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Theorem 3.5's thresholds from one calibration split (radians)."""

    tau_high: float
    tau_low: float
    epsilon: float
    genuine: QuantileEstimate
    blind: QuantileEstimate


def quantile_estimate(sample_rad: NDArray[np.float64], quantile: float, alpha: float,
                      what: str) -> QuantileEstimate:
    """The ``quantile`` of ``sample_rad`` with its order-statistic interval.

    Raises
    ------
    InputError
        The sample is too small for a two-sided ``1 - alpha`` interval of that quantile, or
        holds non-finite values.
    """
    if not np.isfinite(sample_rad).all():
        raise InputError(f"calibration: {what} holds non-finite values")
    value = float(np.quantile(sample_rad, quantile))
    if sample_rad.size >= 2:
        interval = quantile_test(sample_rad, q=value, p=quantile).confidence_interval(
            confidence_level=1.0 - alpha)
        low, high = float(interval.low), float(interval.high)
    else:
        low = high = float("nan")
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InputError(f"calibration: {sample_rad.size} {what} cannot bound their "
                         f"{quantile:g}-quantile at {1 - alpha:.0%}; raise the calibration "
                         "split's n_pairs ([calibration.data])")
    return QuantileEstimate(quantile=quantile, value_rad=value, low_rad=low, high_rad=high,
                            n=int(sample_rad.size))


def genuine_angle_quantiles(genuine_angles_rad: NDArray[np.float64],
                            blind_drifts_rad: NDArray[np.float64], *, genuine_quantile: float,
                            blind_quantile: float, alpha: float) -> Thresholds:
    """Rule ``genuine_angle_quantiles`` (module docstring).

    Parameters
    ----------
    genuine_angles_rad : ndarray (G,)
        ``arccos <f(a), f(b)>`` of each genuine calibration pair.
    blind_drifts_rad : ndarray (N,)
        Each calibration pair's mean drift over its blind (random-region) removals.
    genuine_quantile, blind_quantile : float
        Which quantiles set ``tau_high`` and ``tau_low``.
    alpha : float
        Level of the quantiles' intervals (``epsilon``).

    Raises
    ------
    InputError
        Too few pairs, or ``tau_high - tau_low < epsilon``: the model's genuine gap is not
        resolved above a blind removal's drift (smaller regions, ``q_frac``, may separate them).
    """
    genuine = quantile_estimate(genuine_angles_rad, genuine_quantile, alpha,
                                "genuine calibration pairs")
    blind = quantile_estimate(blind_drifts_rad, blind_quantile, alpha,
                              "blind removals of calibration pairs")
    epsilon = genuine.half_width_rad + blind.half_width_rad
    if genuine.value_rad - blind.value_rad < epsilon:
        raise InputError(
            f"calibration: tau_high = {genuine.value_rad:.4f} rad (genuine angles) - tau_low = "
            f"{blind.value_rad:.4f} rad (blind removals) < epsilon = {epsilon:.4f} rad: a "
            "removal of q_frac random pixels moves this model's faces about as far as a "
            "genuine change of view; use smaller regions (q_frac) or declare fixed thresholds")
    return Thresholds(tau_high=genuine.value_rad, tau_low=blind.value_rad, epsilon=epsilon,
                      genuine=genuine, blind=blind)
