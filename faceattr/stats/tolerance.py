"""Cross-machine float tolerance: the one rule shared by golden baselines and ``faceattr compare``.

A run is byte-identical on one machine and build. On another CPU (AVX2 vs AVX-512 blocking,
FMA contraction, another lane count) the float32 kernels sum in another order and the last bits
of every embedding move; this module says how far each recorded metric may then move, and when
a verdict is decided by those last bits rather than by the science (a *boundary* record).

Derivation
----------
Notation: ``u = 2**-24`` is the float32 unit roundoff (:data:`UNIT_ROUNDOFF_F32`, 5.96e-8).

1. *What differs.* Every metric is computed in float64 from float32 L2-normalised embeddings
   ``e`` (drift ``d = arccos(clip(<e', e_a>, -1, 1))``, score drop ``s(x_a, x_b) - s(x', x_b)``).
   The float64 dot product and arccos add ~``D * 2**-53`` (1e-14): negligible. What moves is the
   float32 embedding: a norm error ``|‖e‖ - 1| <= eta`` and a direction error
   ``‖e/‖e‖ - e_exact‖ <= eps`` per embedding, relative to exact arithmetic.
2. *Norm error, derived.* ``normalize`` sums ``D`` squares in float32 with ``L`` SIMD lanes and
   a ``log2 L`` tree: an effective reduction length ``n = D/L + log2 L``. Its worst-case relative
   error ``gamma_n ~ n u`` (Higham 2002, ch. 3) is not attained with round-to-nearest and
   errors of both signs, and would make the tolerance at small drifts (step 5) as large as a
   real change of the science. We take the probabilistic size ``lambda sqrt(n) u`` of Higham &
   Mary (2019) with ``lambda = 1``: the typical (one standard deviation) size, *not* their
   high-probability bound (that needs ``lambda ~ 6``); it is checked against measurement below
   and in ``tests/compare/test_tolerance.py``. The square root halves it, the divisions add
   ``u``:
   ``eta = (sqrt(D/L + log2 L) / 2 + 1) u`` = 5.1 u for ``D = 512`` (FaceNet), ``L = 8`` (AVX2;
   AVX-512's 16 lanes give less) (:data:`NORM_ROUNDING`). Measured: <= 1.4 u (synthetic CNN and
   dlib ResNet, float32 against a float64 forward).
3. *Direction error, measured.* The forward pass's own error depends on the network's
   conditioning and has no useful a-priori bound: float32 against float64 forwards measured
   6.9 u (synthetic CNN) and 8.9 u (dlib ResNet-29); we take ``eps = 16 u``
   (:data:`DIRECTION_ROUNDING`). It enters an angle unamplified (at most ``4 eps`` = 3.8e-6 rad).
4. *Cosine.* ``<e_a, e_b>`` moves by ``|c| (eta_a + eta_b)`` (norms) plus
   ``|<delta_a, e_b>| + |<e_a, delta_b>| <= (eps_a + eps_b) sin d`` (a direction error orthogonal
   to ``e_a`` meets ``e_b`` only through its component ``sin d``). Two machines, each within
   that of the exact value: ``delta_c(c) = 4 (eta |c| + eps sqrt(1 - c^2))``
   (:func:`cosine_tolerance`; 20 u = 1.2e-6 near ``c = 1``). Measured across kernel blockings
   (batch 64 vs 13 vs 1, one vs two threads) on both golden protocols: <= 3.6 u.
5. *Angle.* arccos amplifies a cosine error by ``1/sin d``; :func:`angle_tolerance` takes the
   exact modulus ``max |arccos(c +- delta_c) - d|`` (clipped to [-1, 1]), which is
   ``delta_c / sin d`` for ``d >> sqrt(delta_c)`` and ``sqrt(2 delta_c)`` at ``d = 0``.
   At the golden runs' smallest drift, 0.0166 rad: 7.7e-5 rad (largest measured drift change
   across blockings: 8.4e-6 rad, at a drift of 0.019 rad).
6. *Means and margins.* The ``K`` draws share the clean embedding, so their errors are not
   independent: a mean's tolerance is the mean of the draws' tolerances (no ``1/sqrt(K)``), and
   ``margin = d_high - d_low`` adds the two. A score drop adds the tolerances of its two cosines.
   For the golden records this is 1e-5 to 8e-5 rad; their stored values (AMD EPYC) against an
   Intel Xeon (AVX-512) differ by at most 9% of each record's tolerance (2e-6 to 4e-6 rad),
   while a change of ``q`` or of the fill moves margins by > 1e-3, over 100 times the
   tolerance (the golden test checks both).

Fractions and p-values are *boundary-sensitive*: ``pairwise_violation_frac`` counts
comparisons ``d_high_i <= d_low_j``; one flips only when ``|d_high_i - d_low_j|`` is within the
two draws' tolerances, so its tolerance is (such comparisons) / K^2. A Theorem 3.5 p-value is
bounded by interval arithmetic on the t statistic (mean within its tolerance, SD within
``sqrt(sum tol_k^2) / sqrt(K - 1)``, since the SD is a norm of the centred sample).

Boundary rule per verdict (:class:`RecordTolerance`):

- simple (``margin <= 0``): boundary when ``|margin| <= tol(margin)``;
- Theorem 3.5 (survives iff ``p_high < alpha`` and ``p_low < alpha``, ``tau_high - tau_low >=
  epsilon``): boundary when, with every draw moved within its tolerance, the verdict can still
  go both ways (the reachable p-value range of a deciding test contains ``alpha``);
- trivial and error records are never boundary: their verdict is fixed (intention-to-treat).

References
----------
.. [1] N. J. Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., SIAM, 2002,
   ch. 3 (rounding errors of sums and inner products).
.. [2] N. J. Higham and T. Mary, "A new approach to probabilistic rounding error analysis",
   SIAM J. Sci. Comput. 41(5):A2815-A2835, 2019.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from scipy import stats as _sps

from faceattr.records import PairRecord

__all__ = [
    "DIRECTION_ROUNDING",
    "NORM_ROUNDING",
    "UNIT_ROUNDOFF_F32",
    "RecordTolerance",
    "TheoremSettings",
    "angle_tolerance",
    "cosine_tolerance",
    "norm_rounding",
    "one_sided_p_range",
    "record_tolerance",
    "score_drop_tolerance",
    "within",
]

UNIT_ROUNDOFF_F32: Final = 2.0 ** -24
"""Unit roundoff of IEEE float32 (half an ulp of 1)."""


def norm_rounding(dim: int, lanes: int) -> float:
    """``|‖e‖ - 1|`` of one float32-normalised embedding (step 2 of the module docstring).

    ``(sqrt(dim / lanes + log2 lanes) / 2 + 1) u``: the probabilistic (``lambda = 1``) error of
    a ``lanes``-wide blocked float32 sum of ``dim`` squares, halved by the square root, plus
    ``u`` for the divisions.
    """
    if dim < 1 or lanes < 1:
        raise ValueError(f"dim and lanes must be >= 1, got {dim}, {lanes}")
    return (math.sqrt(dim / lanes + math.log2(lanes)) / 2.0 + 1.0) * UNIT_ROUNDOFF_F32


NORM_ROUNDING: Final = norm_rounding(512, 8)
"""``eta``: norm error of one float32-normalised embedding, ``D <= 512`` on >= 8 lanes (5.1 u)."""
DIRECTION_ROUNDING: Final = 16.0 * UNIT_ROUNDOFF_F32
"""``eps``: direction error of one float32 embedding (measured <= 8.9 u; 16 u taken)."""


def cosine_tolerance(cosine: float) -> float:
    """Cross-machine bound on a computed cosine of two float32 unit embeddings.

    ``4 (eta |c| + eps sqrt(1 - c^2))`` (step 4); ``c`` is clipped to [-1, 1] first.
    """
    c = min(1.0, max(-1.0, _finite("cosine", cosine)))
    return 4.0 * (NORM_ROUNDING * abs(c) + DIRECTION_ROUNDING * math.sqrt(max(0.0, 1.0 - c * c)))


def angle_tolerance(angle_rad: float) -> float:
    """Cross-machine bound on a geodesic drift ``arccos(clip(c, -1, 1))`` (step 5).

    The exact modulus of arccos over the cosine's tolerance:
    ``max(arccos(max(-1, c - delta_c)) - d, d - arccos(min(1, c + delta_c)))``.
    """
    d = _finite("angle_rad", angle_rad)
    if not 0.0 <= d <= math.pi + 1e-6:
        raise ValueError(f"angle_rad must lie in [0, pi], got {angle_rad!r}")
    d = min(d, math.pi)
    c = math.cos(d)
    dc = cosine_tolerance(c)
    return max(math.acos(max(-1.0, c - dc)) - d, d - math.acos(min(1.0, c + dc)), 0.0)


def score_drop_tolerance(score_clean: float, score_drop: float) -> float:
    """Cross-machine bound on ``s(x_a, x_b) - s(x', x_b)``: the two cosines' tolerances."""
    s = _finite("score_clean", score_clean)
    return cosine_tolerance(s) + cosine_tolerance(s - _finite("score_drop", score_drop))


def within(expected: float, actual: float, tolerance: float) -> bool:
    """``|expected - actual| <= tolerance`` for finite numbers (the comparison everyone uses)."""
    return math.isfinite(expected) and math.isfinite(actual) and \
        abs(expected - actual) <= tolerance


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True, slots=True)
class TheoremSettings:
    """What decides a Theorem 3.5 verdict: the distance tested, ``tau``s, ``epsilon``, level."""

    distance: Literal["geodesic", "score_drop"]
    tau_high: float
    tau_low: float
    epsilon: float
    alpha: float

    def __post_init__(self) -> None:
        if self.distance not in ("geodesic", "score_drop"):
            raise ValueError(f"distance {self.distance!r} is not geodesic|score_drop")
        for name in ("tau_high", "tau_low", "epsilon", "alpha"):
            _finite(name, getattr(self, name))
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")

    @classmethod
    def from_protocol(cls, protocol: Mapping[str, Any]) -> TheoremSettings | None:
        """From a run's ``protocol.json`` (its ``[falsification]`` table); ``None`` when the
        table does not declare all of ``distance``, ``tau_high``, ``tau_low``, ``epsilon``,
        ``test_alpha`` (then no Theorem 3.5 verdict can be called a boundary one)."""
        if "falsification" not in protocol:
            return None
        table = protocol["falsification"]
        keys = ("distance", "tau_high", "tau_low", "epsilon", "test_alpha")
        if not isinstance(table, Mapping) or any(k not in table for k in keys):
            return None
        return cls(distance=table["distance"], tau_high=float(table["tau_high"]),
                   tau_low=float(table["tau_low"]), epsilon=float(table["epsilon"]),
                   alpha=float(table["test_alpha"]))


def one_sided_p_range(sample: Sequence[float], tolerances: Sequence[float], *, tau: float,
                      alternative: Literal["greater", "less"]) -> tuple[float, float]:
    """Smallest and largest one-sample t-test p-value when each value moves within its tolerance.

    Interval arithmetic on ``t = (mean - tau) sqrt(K) / sd``: the mean within
    ``mean(tolerances)``, the SD within ``sqrt(sum tol^2) / sqrt(K - 1)``. A sample whose SD may
    reach zero is decided by its mean alone (as in
    :func:`faceattr.falsification.verdicts.theorem_verdict`): ``t`` is then unbounded.

    Returns
    -------
    tuple of float
        ``(p_min, p_max)``; the p-value computed on the sample lies in between.
    """
    k = len(sample)
    if k < 2 or len(tolerances) != k:
        raise ValueError(f"need K >= 2 values and as many tolerances, got {k}, {len(tolerances)}")
    mean = math.fsum(sample) / k
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in sample) / (k - 1))
    dm = math.fsum(tolerances) / k
    ds = math.sqrt(math.fsum(t * t for t in tolerances) / (k - 1))
    floor = 1e-12 * max(1.0, abs(mean) + dm)
    low_sd = sd - ds

    def t_extreme(num: float, largest: bool) -> float:
        # largest t: a positive numerator over the smallest SD, a negative one over the largest
        towards_zero = (num > 0) != largest
        if num == 0.0:
            return 0.0
        if towards_zero and sd + ds > 0.0:
            return num * math.sqrt(k) / (sd + ds)
        if towards_zero or low_sd <= floor:
            return math.inf if num > 0 else -math.inf
        return num * math.sqrt(k) / low_sd

    t_max = t_extreme(mean + dm - tau, largest=True)
    t_min = t_extreme(mean - dm - tau, largest=False)
    if alternative == "greater":
        return float(_sps.t.sf(t_max, k - 1)), float(_sps.t.sf(t_min, k - 1))
    if alternative == "less":
        return float(_sps.t.cdf(t_min, k - 1)), float(_sps.t.cdf(t_max, k - 1))
    raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")


@dataclass(frozen=True, slots=True)
class RecordTolerance:
    """How far one record's metrics may move on another machine, and its boundary verdicts.

    Attributes
    ----------
    score_clean, d_high_rad, d_low_rad, margin_rad, pairwise_violation_frac : float or None
        Cross-machine tolerances of those fields (``None`` where the record has no value).
    p_high_range, p_low_range : tuple of float or None
        Reachable range of each Theorem 3.5 p-value (``None`` without settings or drifts).
    boundary_simple : bool
        The simple verdict (``margin <= 0``) can go either way: ``|margin| <= tol(margin)``.
    boundary_theorem : bool or None
        The Theorem 3.5 verdict can go either way; ``None`` when the settings are unknown.
    """

    score_clean: float | None
    d_high_rad: float | None
    d_low_rad: float | None
    margin_rad: float | None
    pairwise_violation_frac: float | None
    p_high_range: tuple[float, float] | None
    p_low_range: tuple[float, float] | None
    boundary_simple: bool
    boundary_theorem: bool | None

    def __post_init__(self) -> None:
        for name in ("score_clean", "d_high_rad", "d_low_rad", "margin_rad",
                     "pairwise_violation_frac"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"tolerance {name} must be finite and >= 0, got {value!r}")
        for name in ("p_high_range", "p_low_range"):
            rng = getattr(self, name)
            if rng is not None and not 0.0 <= rng[0] <= rng[1] <= 1.0:
                raise ValueError(f"{name} must be 0 <= low <= high <= 1, got {rng!r}")

    def boundary(self, rule: str) -> bool:
        """Whether the verdict of ``rule`` (``"simple"`` | ``"theorem"``) is a boundary one
        (an unknown Theorem 3.5 setting is not: the verdict then counts as determined)."""
        if rule == "simple":
            return self.boundary_simple
        if rule == "theorem":
            return bool(self.boundary_theorem)
        raise ValueError(f"verdict rule {rule!r} is not simple|theorem")

    def metric(self, name: str) -> float | None:
        """The tolerance of metric ``name`` (a field of this record type)."""
        if name not in _METRIC_FIELDS:
            raise ValueError(f"no tolerance for {name!r}; one of {_METRIC_FIELDS}")
        value: float | None = getattr(self, name)
        return value

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (no NaN; ranges as two-element lists)."""
        return {"score_clean": self.score_clean, "d_high_rad": self.d_high_rad,
                "d_low_rad": self.d_low_rad, "margin_rad": self.margin_rad,
                "pairwise_violation_frac": self.pairwise_violation_frac,
                "p_high_range": None if self.p_high_range is None else list(self.p_high_range),
                "p_low_range": None if self.p_low_range is None else list(self.p_low_range),
                "boundary_simple": self.boundary_simple,
                "boundary_theorem": self.boundary_theorem}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RecordTolerance:
        """Rebuild from :meth:`to_json` (exactly its keys)."""
        expected = {"score_clean", "d_high_rad", "d_low_rad", "margin_rad",
                    "pairwise_violation_frac", "p_high_range", "p_low_range", "boundary_simple",
                    "boundary_theorem"}
        if set(row) != expected:
            raise ValueError(f"tolerance keys mismatch: missing {sorted(expected - set(row))}, "
                             f"unexpected {sorted(set(row) - expected)}")

        def pair(v: Any) -> tuple[float, float] | None:
            return None if v is None else (float(v[0]), float(v[1]))

        return cls(score_clean=row["score_clean"], d_high_rad=row["d_high_rad"],
                   d_low_rad=row["d_low_rad"], margin_rad=row["margin_rad"],
                   pairwise_violation_frac=row["pairwise_violation_frac"],
                   p_high_range=pair(row["p_high_range"]), p_low_range=pair(row["p_low_range"]),
                   boundary_simple=bool(row["boundary_simple"]),
                   boundary_theorem=row["boundary_theorem"])


_METRIC_FIELDS = ("score_clean", "d_high_rad", "d_low_rad", "margin_rad",
                  "pairwise_violation_frac")


def _theorem_boundary(record: PairRecord, settings: TheoremSettings, tol_high: Sequence[float],
                      tol_low: Sequence[float]
                      ) -> tuple[tuple[float, float], tuple[float, float], bool]:
    if settings.distance == "geodesic":
        high, low = record.drift_high_rad, record.drift_low_rad
        th, tl = tol_high, tol_low
    else:
        if record.score_clean is None:
            raise ValueError(f"record {record.pair_id}: a score-drop test needs score_clean")
        s = record.score_clean
        high, low = record.score_drop_high, record.score_drop_low
        th = [score_drop_tolerance(s, v) for v in high]
        tl = [score_drop_tolerance(s, v) for v in low]
    ph = one_sided_p_range(high, th, tau=settings.tau_high, alternative="greater")
    pl = one_sided_p_range(low, tl, tau=settings.tau_low, alternative="less")
    if settings.tau_high - settings.tau_low < settings.epsilon:
        return ph, pl, False  # condition (3) fails whatever the drifts: always falsified
    can_survive = ph[0] < settings.alpha and pl[0] < settings.alpha
    can_fall = ph[1] >= settings.alpha or pl[1] >= settings.alpha
    return ph, pl, can_survive and can_fall


def record_tolerance(record: PairRecord, theorem: TheoremSettings | None) -> RecordTolerance:
    """The cross-machine tolerances and boundary verdicts of one record (module docstring).

    Parameters
    ----------
    record : PairRecord
        A valid record uses its K drifts per region; a trivial or error record has only its
        clean score (and is never a boundary record).
    theorem : TheoremSettings or None
        The run's Theorem 3.5 settings; ``None`` leaves ``boundary_theorem`` undetermined.
    """
    score = None if record.score_clean is None else cosine_tolerance(record.score_clean)
    if record.status != "valid" or record.margin_rad is None:
        return RecordTolerance(score_clean=score, d_high_rad=None, d_low_rad=None,
                               margin_rad=None, pairwise_violation_frac=None, p_high_range=None,
                               p_low_range=None, boundary_simple=False,
                               boundary_theorem=False if theorem is not None else None)
    high, low = record.drift_high_rad, record.drift_low_rad
    tol_high = [angle_tolerance(d) for d in high]
    tol_low = [angle_tolerance(d) for d in low]
    t_high = math.fsum(tol_high) / len(tol_high)
    t_low = math.fsum(tol_low) / len(tol_low)
    t_margin = t_high + t_low
    gap = np.abs(np.asarray(high)[:, None] - np.asarray(low)[None, :])
    close = int(np.count_nonzero(gap <= np.asarray(tol_high)[:, None] +
                                 np.asarray(tol_low)[None, :]))
    ph: tuple[float, float] | None = None
    pl: tuple[float, float] | None = None
    boundary_theorem: bool | None = None
    if theorem is not None:
        ph, pl, boundary_theorem = _theorem_boundary(record, theorem, tol_high, tol_low)
    return RecordTolerance(score_clean=score, d_high_rad=t_high, d_low_rad=t_low,
                           margin_rad=t_margin,
                           pairwise_violation_frac=close / (len(high) * len(low)),
                           p_high_range=ph, p_low_range=pl,
                           boundary_simple=abs(record.margin_rad) <= t_margin,
                           boundary_theorem=boundary_theorem)
