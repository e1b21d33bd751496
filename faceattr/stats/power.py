"""Power and sample size for separating two falsification rates.

Unpaired: the normal approximation on Cohen's h (``statsmodels`` ``NormalIndPower``).
Paired (McNemar): Connor's (1987) normal approximation on the discordant-cell probabilities.
"""

from __future__ import annotations

import math
from typing import Literal

from scipy import stats as _sps
from statsmodels.stats.power import NormalIndPower

from faceattr.stats.effects import cohens_h
from faceattr.stats.proportions import check_alpha
from faceattr.stats.records import PairedTable, check_finite, check_probability

__all__ = [
    "achieved_power_paired",
    "achieved_power_paired_table",
    "achieved_power_unpaired",
    "pairs_needed_paired",
    "pairs_needed_unpaired",
]

_SM_ALT = {"two-sided": "two-sided", "larger": "larger", "smaller": "smaller"}


def _check_power(power: float) -> float:
    p = check_finite("power", power)
    if not 0.0 < p < 1.0:
        raise ValueError(f"power must satisfy 0 < power < 1, got {power!r}")
    return p


def _check_n(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    return n


def pairs_needed_unpaired(
    rate_a: float,
    rate_b: float,
    *,
    alpha: float,
    power: float,
    alternative: Literal["two-sided", "larger", "smaller"],
) -> int:
    """Pairs per arm for two independent samples to separate ``rate_a`` from ``rate_b``.

    ``n = ((z_{1-alpha/2} + z_{power}) / h)^2`` (two-sided; ``z_{1-alpha}`` one-sided) with
    Cohen's h, solved by ``NormalIndPower().solve_power(ratio=1)`` and rounded up.
    Equal rates raise (no finite sample separates them).

    References
    ----------
    .. [1] J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 1988, ch. 6.
    """
    a_ = check_alpha(alpha)
    pw = _check_power(power)
    if alternative not in _SM_ALT:
        raise ValueError(f"alternative must be one of {tuple(_SM_ALT)}, got {alternative!r}")
    h = cohens_h(rate_a, rate_b)
    if h == 0.0:
        raise ValueError(f"rate_a == rate_b == {rate_a!r}: no sample size separates equal rates")
    if (alternative == "larger" and h < 0) or (alternative == "smaller" and h > 0):
        raise ValueError(f"alternative={alternative!r} contradicts rate_a - rate_b = "
                         f"{rate_a - rate_b:+g}")
    n = NormalIndPower().solve_power(
        effect_size=abs(h) if alternative == "two-sided" else h, nobs1=None, alpha=a_,
        power=pw, ratio=1.0, alternative=_SM_ALT[alternative],
    )
    nf = float(n)
    if not math.isfinite(nf) or nf <= 0:
        raise ArithmeticError(f"solve_power returned {nf!r}")
    return max(2, math.ceil(nf - 1e-9))


def achieved_power_unpaired(
    rate_a: float, rate_b: float, *, n_a: int, n_b: int, alpha: float
) -> float:
    """Power of the two-sided two-proportion test (normal approximation on Cohen's h).

    ``NormalIndPower().power(effect_size=h, nobs1=n_a, ratio=n_b/n_a)``; at equal rates the
    power equals ``alpha``.
    """
    a_ = check_alpha(alpha)
    na, nb = _check_n("n_a", n_a), _check_n("n_b", n_b)
    h = cohens_h(rate_a, rate_b)
    pw = float(NormalIndPower().power(effect_size=abs(h), nobs1=na, alpha=a_, ratio=nb / na,
                                      alternative="two-sided"))
    return check_probability("power", min(1.0, max(0.0, pw)))


def _connor(psi: float, delta: float) -> tuple[float, float]:
    if not 0.0 < psi <= 1.0:
        raise ValueError(f"discordant probability must be in (0, 1], got {psi!r}")
    return psi, delta


def pairs_needed_paired(
    rate_a_only: float, rate_b_only: float, *, alpha: float, power: float
) -> int:
    """Pairs needed for a two-sided McNemar test (Connor 1987 normal approximation).

    With discordant-cell probabilities ``p10 = rate_a_only`` (arm a True, b False) and
    ``p01 = rate_b_only``, ``psi = p10 + p01``, ``delta = p10 - p01``:
    ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2``, rounded up.

    References
    ----------
    .. [1] R. J. Connor, "Sample size for testing differences in proportions for the
       paired-sample design", Biometrics 43(1):207-211, 1987.
    """
    a_ = check_alpha(alpha)
    pw = _check_power(power)
    p10 = check_probability("rate_a_only", rate_a_only)
    p01 = check_probability("rate_b_only", rate_b_only)
    if p10 + p01 > 1.0:
        raise ValueError(f"rate_a_only + rate_b_only = {p10 + p01!r} > 1")
    psi, delta = _connor(p10 + p01, p10 - p01)
    if delta == 0.0:
        raise ValueError("rate_a_only == rate_b_only: no sample size separates equal rates")
    za = float(_sps.norm.ppf(1.0 - a_ / 2.0))
    zb = float(_sps.norm.ppf(pw))
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / delta**2
    return max(2, math.ceil(n - 1e-9))


def achieved_power_paired(
    rate_a_only: float, rate_b_only: float, *, n: int, alpha: float
) -> float:
    """Power of the two-sided McNemar test at ``n`` pairs (Connor 1987 approximation).

    ``Phi((sqrt(n) |delta| - z_{1-alpha/2} sqrt(psi)) / sqrt(psi - delta^2))``; when
    ``psi = delta^2`` (all discordance one way) the power is 1 if the numerator is positive,
    else 0. With no discordance (``psi = 0``) the test cannot reject: power 0.

    References
    ----------
    .. [1] R. J. Connor, Biometrics 43(1):207-211, 1987.
    """
    a_ = check_alpha(alpha)
    nn = _check_n("n", n)
    p10 = check_probability("rate_a_only", rate_a_only)
    p01 = check_probability("rate_b_only", rate_b_only)
    if p10 + p01 > 1.0:
        raise ValueError(f"rate_a_only + rate_b_only = {p10 + p01!r} > 1")
    psi, delta = p10 + p01, p10 - p01
    if psi == 0.0:
        return 0.0
    za = float(_sps.norm.ppf(1.0 - a_ / 2.0))
    num = math.sqrt(nn) * abs(delta) - za * math.sqrt(psi)
    den2 = psi - delta * delta
    if den2 <= 0.0:
        return 1.0 if num > 0 else 0.0
    return check_probability("power", float(_sps.norm.cdf(num / math.sqrt(den2))))


def achieved_power_paired_table(table: PairedTable, *, alpha: float) -> float:
    """:func:`achieved_power_paired` at the observed discordant rates of a finished comparison.

    This is "observed power": a function of the observed effect, reported for planning the
    next study, not as evidence about the null.
    """
    return achieved_power_paired(
        table.n_a_only / table.n, table.n_b_only / table.n, n=table.n, alpha=alpha
    )
