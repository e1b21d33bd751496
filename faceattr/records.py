"""Per-pair records: typed, frozen, validated on write and on read.

One record per (pair, model, method). Every pair gets a status — ``valid``, ``trivial`` or
``error:<ExceptionType>`` — so nothing is silently dropped (PITFALLS.md #3, #4). Rates are
fractions, distances radians; a record that violates a range cannot be constructed
(PITFALLS.md #1, #2). Serialisation is strict: reading requires exactly the known keys, no
defaults (PITFALLS.md #1).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["TARGET_IDENTITY_STATUS", "PairRecord", "Status", "is_error_status"]

Status = str
TARGET_IDENTITY_STATUS = "error:target_identity"
"""Per-pair status of a pair whose method explained another scalar than ``s(x_a, x_b)``
(set by :mod:`faceattr.experiments.target_identity`, judged by the partner claims)."""

_STATUS_RE = re.compile(r"^(valid|trivial|error:[A-Za-z_][A-Za-z0-9_]*)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PI = math.pi
_ANGLE_SLACK = 1e-6  # float32 embeddings: arccos of a clipped dot product stays in [0, pi]
_SCORE_SLACK = 1e-5  # cosine of float32 unit vectors may exceed 1 by a few ulp


def is_error_status(status: Status) -> bool:
    """Return True for ``error:<type>`` statuses."""
    return status.startswith("error:")


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"record field {name} must be finite, got {value!r}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    _check_finite(name, value)
    if not low <= value <= high:
        raise ValueError(f"record field {name}={value!r} outside [{low}, {high}]")


@dataclass(frozen=True, slots=True)
class PairRecord:
    """The outcome of one falsification test on one pair, for one model and one method.

    Attributes
    ----------
    pair_id, model, method : str
        The join key. ``method`` is the protocol's method id.
    is_genuine : bool
        Pair label (same identity).
    status : str
        ``valid`` | ``trivial`` | ``error:<ExceptionType>``.
    status_reason : str or None
        Why a pair is trivial or errored; None when valid.
    falsified : bool
        Primary verdict (``verdict_rule``), intention-to-treat: trivial and error pairs are
        falsified.
    verdict_rule : {"simple", "theorem"}
        Which verdict is primary (declared by the protocol).
    falsified_simple, falsified_theorem : bool
        Both verdicts, always recorded: ``margin <= 0``, and Theorem 3.5.
    p_high, p_low : float or None
        One-sided p-values of Theorem 3.5's two tests.
    score_clean : float or None
        Verification score ``s(x_a, x_b)`` of the clean pair, in [-1, 1].
    n_high_px, n_low_px, n_boundary_ties : int or None
        Region sizes in pixels and the number of tied pixels at the region boundaries that
        were ordered by pixel index (deterministic tie-break).
    area_ratio : float or None
        ``n_high_px / n_low_px`` (1 in quantile mode).
    area_confound : bool or None
        True when the area ratio leaves the protocol's declared bounds.
    map_sha256, map_range, map_entropy_norm, map_gini : str, float or None
        Digest and statistics of the method's map (None when no finite map was produced).
    gt_roc_auc, gt_rank_accuracy, gt_mass_accuracy : float or None
        Ground-truth quality of the ranked map where the data source knows the identity
        regions (:mod:`faceattr.falsification.quality`): map-vs-mask ROC AUC, share of the
        top-``|mask|`` pixels inside the mask, share of positive relevance inside the mask
        (None without a mask, or without positive relevance for the mass share).
    attribution_sum : float or None
        ``sum(phi)`` of the map (completeness: compare with the target's change).
    convergence_delta : float or None
        ``sum(phi) - (F(x) - F(baseline))`` for methods with a completeness delta, else None.
    target_grad_norm : float or None
        L2 norm of the gradient of the explained score w.r.t. the probe (target sanity);
        None for control maps, which do not explain the score.
    drift_high_rad, drift_low_rad : tuple of float
        The K geodesic drifts ``d_g(f(x_a), f(x'))`` per region, radians in [0, pi].
    score_drop_high, score_drop_low : tuple of float
        The K score drops ``s(x_a, x_b) - s(x', x_b)`` per region, in [-2, 2].
    d_high_rad, d_low_rad, sd_high_rad, sd_low_rad, margin_rad : float or None
        Means and SDs (ddof=1) of the drifts; ``margin = d_high - d_low``.
    pairwise_violation_frac : float or None
        Share of the K x K comparisons with ``d_high_i <= d_low_j``, in [0, 1].
    regions_sha256 : str or None
        Digest of the ``S_high`` and ``S_low`` pixel index sets the test perturbed
        (:func:`faceattr.falsification.regions.region_fingerprint`): equal for maps that are
        one map to the test (a positive rescaling), so ``distinct_maps`` can see it. Present
        exactly when the record is valid.
    """

    pair_id: str
    model: str
    method: str
    is_genuine: bool
    status: Status
    status_reason: str | None
    falsified: bool
    verdict_rule: str
    falsified_simple: bool
    falsified_theorem: bool
    p_high: float | None
    p_low: float | None
    score_clean: float | None
    n_high_px: int | None
    n_low_px: int | None
    n_boundary_ties: int | None
    area_ratio: float | None
    area_confound: bool | None
    map_sha256: str | None
    map_range: float | None
    map_entropy_norm: float | None
    map_gini: float | None
    gt_roc_auc: float | None
    gt_rank_accuracy: float | None
    gt_mass_accuracy: float | None
    attribution_sum: float | None
    convergence_delta: float | None
    target_grad_norm: float | None
    drift_high_rad: tuple[float, ...]
    drift_low_rad: tuple[float, ...]
    score_drop_high: tuple[float, ...]
    score_drop_low: tuple[float, ...]
    d_high_rad: float | None
    d_low_rad: float | None
    sd_high_rad: float | None
    sd_low_rad: float | None
    margin_rad: float | None
    pairwise_violation_frac: float | None
    regions_sha256: str | None

    def __post_init__(self) -> None:
        if not _STATUS_RE.match(self.status):
            raise ValueError(f"record status {self.status!r} is not valid|trivial|error:<Type>")
        if self.verdict_rule not in ("simple", "theorem"):
            raise ValueError(f"verdict_rule {self.verdict_rule!r} is not simple|theorem")
        primary = self.falsified_simple if self.verdict_rule == "simple" else \
            self.falsified_theorem
        if self.falsified != primary:
            raise ValueError(f"falsified={self.falsified} disagrees with the primary "
                             f"{self.verdict_rule} verdict")
        if self.score_clean is not None:
            _check_range("score_clean", self.score_clean, -1 - _SCORE_SLACK, 1 + _SCORE_SLACK)
        self._check_map_stats()
        if self.status == "valid":
            self._check_valid()
        else:
            self._check_not_valid()

    def _check_map_stats(self) -> None:
        for name in ("attribution_sum", "convergence_delta", "target_grad_norm"):
            value = getattr(self, name)
            if value is not None:
                _check_finite(name, value)
        if self.target_grad_norm is not None and self.target_grad_norm < 0:
            raise ValueError("target_grad_norm must be >= 0")
        present = [v is not None for v in (self.map_sha256, self.map_range,
                                           self.map_entropy_norm, self.map_gini)]
        if any(present) and not all(present):
            raise ValueError("map statistics are all present or all absent")
        if self.map_range is not None:
            _check_range("map_range", self.map_range, 0.0, math.inf)
            _check_range("map_entropy_norm", float(self.map_entropy_norm or 0.0), 0.0, 1.0)
            _check_range("map_gini", float(self.map_gini or 0.0), 0.0, 1.0)
        for name in ("gt_roc_auc", "gt_rank_accuracy", "gt_mass_accuracy"):
            value = getattr(self, name)
            if value is not None:
                _check_range(name, value, 0.0, 1.0)
        if (self.gt_roc_auc is None) != (self.gt_rank_accuracy is None):
            raise ValueError("gt_roc_auc and gt_rank_accuracy are both present or both absent")
        if self.gt_roc_auc is not None and self.map_sha256 is None:
            raise ValueError("ground-truth quality needs the map's statistics")
        if self.status == "valid" and self.map_sha256 is None:
            raise ValueError("a valid record carries its map statistics")

    def _check_valid(self) -> None:
        if self.status_reason is not None:
            raise ValueError("a valid record has no status_reason")
        k = len(self.drift_high_rad)
        lengths = {len(self.drift_low_rad), len(self.score_drop_high), len(self.score_drop_low)}
        if k < 2 or lengths != {k}:
            raise ValueError(f"a valid record needs K >= 2 draws per region, equal lengths; "
                             f"got {k} and {sorted(lengths)}")
        for name in ("drift_high_rad", "drift_low_rad"):
            for value in getattr(self, name):
                _check_range(name, value, 0.0, _PI + _ANGLE_SLACK)
        for name in ("score_drop_high", "score_drop_low"):
            for value in getattr(self, name):
                _check_range(name, value, -2 - _SCORE_SLACK, 2 + _SCORE_SLACK)
        for name in ("d_high_rad", "d_low_rad", "sd_high_rad", "sd_low_rad"):
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"a valid record needs {name}")
            _check_range(name, value, 0.0, _PI + _ANGLE_SLACK)
        if self.margin_rad is None or self.pairwise_violation_frac is None:
            raise ValueError("a valid record needs margin_rad and pairwise_violation_frac")
        _check_range("margin_rad", self.margin_rad, -_PI - _ANGLE_SLACK, _PI + _ANGLE_SLACK)
        _check_range("pairwise_violation_frac", self.pairwise_violation_frac, 0.0, 1.0)
        for name in ("n_high_px", "n_low_px", "n_boundary_ties"):
            value = getattr(self, name)
            if value is None or value < 0:
                raise ValueError(f"a valid record needs {name} >= 0, got {value!r}")
        if not self.n_high_px or not self.n_low_px:
            raise ValueError("a valid record has non-empty regions")
        for name in ("p_high", "p_low"):
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"a valid record needs {name}")
            _check_range(name, value, 0.0, 1.0)
        if self.area_ratio is None or self.area_confound is None:
            raise ValueError("a valid record needs area_ratio and area_confound")
        if self.regions_sha256 is None or not _SHA256_RE.match(self.regions_sha256):
            raise ValueError(f"a valid record needs regions_sha256 (64 hex digits), got "
                             f"{self.regions_sha256!r}")
        _check_range("area_ratio", self.area_ratio, 0.0, float(self.n_high_px))

    def _check_not_valid(self) -> None:
        if not self.status_reason:
            raise ValueError(f"a {self.status} record needs a status_reason")
        if not (self.falsified and self.falsified_simple and self.falsified_theorem):
            raise ValueError(f"a {self.status} record counts as falsified (intention-to-treat)")
        measured = (self.drift_high_rad, self.drift_low_rad, self.score_drop_high,
                    self.score_drop_low)
        if any(measured) or self.margin_rad is not None or self.p_high is not None:
            raise ValueError(f"a {self.status} record carries no drift measurements")
        if self.regions_sha256 is not None:
            raise ValueError(f"a {self.status} record has no regions (regions_sha256 is None)")

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists)."""
        row = asdict(self)
        for name in ("drift_high_rad", "drift_low_rad", "score_drop_high", "score_drop_low"):
            row[name] = list(row[name])
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> PairRecord:
        """Rebuild a record; the keys must match exactly (no defaulted lookups)."""
        expected = {f.name for f in fields(cls)}
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise ValueError(f"record keys mismatch: missing {missing}, unexpected {extra}")
        values = dict(row)
        for name in ("drift_high_rad", "drift_low_rad", "score_drop_high", "score_drop_low"):
            values[name] = tuple(float(v) for v in row[name])
        return cls(**values)
