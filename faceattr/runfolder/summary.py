"""Run summary: per-method status ledger and falsification rates, built from records only."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceattr.records import PairRecord, is_error_status
from faceattr.stats.proportions import ProportionInterval, ProportionMethod, proportion_interval

__all__ = ["GateResult", "MethodSummary", "RunSummary", "summarise_method"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """Model gate: verification ROC AUC on the run's pairs vs the declared minimum, with the
    true-accept rates at false-accept rates of at most 1% and 0.1%."""

    model: str
    auc: float
    n_genuine: int
    n_impostor: int
    min_auc: float
    passed: bool
    tar_at_far_1e2: float
    tar_at_far_1e3: float

    def __post_init__(self) -> None:
        for name in ("auc", "tar_at_far_1e2", "tar_at_far_1e3"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"gate {name} must be in [0, 1], got {value!r}")
        if self.passed != (self.auc >= self.min_auc):
            raise ValueError("gate verdict disagrees with its AUC and minimum")


@dataclass(frozen=True, slots=True)
class MethodSummary:
    """Ledger and FR of one (model, method) over all pairs of a run.

    ``fr_itt`` is the primary estimand: the share of pairs falsified under the primary
    verdict, trivial and error pairs counted as falsified (intention-to-treat). ``fr_valid``
    is the valid-only sensitivity figure, ``None`` with a reason when no pair is valid.
    ``fr_itt_simple`` and ``fr_itt_theorem`` give both verdicts' ITT rates;
    ``n_area_confound`` counts valid pairs whose region areas left the declared bounds.
    Genuine and impostor pairs are also reported apart (``fr_itt_genuine``/``_impostor``,
    None for an empty stratum): for an impostor pair the explained score is low and masking
    its identity regions tends to *raise* it, so its score drops mean something else (the
    geodesic drift of the probe does not depend on the partner). ``mean_gt_*`` are the mean
    ground-truth quality measures of the ranked maps where the data source has masks.
    """

    model: str
    method: str
    n_pairs: int
    n_valid: int
    n_trivial: int
    n_error: int
    fr_itt: ProportionInterval
    fr_valid: ProportionInterval | None
    fr_valid_undefined_reason: str | None
    fr_itt_simple: ProportionInterval
    fr_itt_theorem: ProportionInterval
    n_area_confound: int
    mean_margin_rad: float | None
    mean_d_high_rad: float | None
    mean_d_low_rad: float | None
    fr_itt_genuine: ProportionInterval | None
    fr_itt_impostor: ProportionInterval | None
    mean_margin_genuine_rad: float | None
    mean_margin_impostor_rad: float | None
    mean_gt_roc_auc: float | None
    mean_gt_rank_accuracy: float | None

    def __post_init__(self) -> None:
        if self.n_valid + self.n_trivial + self.n_error != self.n_pairs:
            raise ValueError(f"{self.method}: ledger does not add up to n_pairs={self.n_pairs}")
        if (self.fr_valid is None) == (self.fr_valid_undefined_reason is None):
            raise ValueError(f"{self.method}: fr_valid needs a value or a reason, not both")
        if self.fr_itt.n != self.n_pairs:
            raise ValueError(f"{self.method}: fr_itt must be over all {self.n_pairs} pairs")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"model": self.model, "method": self.method, "n_pairs": self.n_pairs,
                "n_valid": self.n_valid, "n_trivial": self.n_trivial, "n_error": self.n_error,
                "fr_itt": self.fr_itt.to_json(),
                "fr_valid": None if self.fr_valid is None else self.fr_valid.to_json(),
                "fr_valid_undefined_reason": self.fr_valid_undefined_reason,
                "fr_itt_simple": self.fr_itt_simple.to_json(),
                "fr_itt_theorem": self.fr_itt_theorem.to_json(),
                "n_area_confound": self.n_area_confound,
                "mean_margin_rad": self.mean_margin_rad, "mean_d_high_rad": self.mean_d_high_rad,
                "mean_d_low_rad": self.mean_d_low_rad,
                "fr_itt_genuine": _interval_json(self.fr_itt_genuine),
                "fr_itt_impostor": _interval_json(self.fr_itt_impostor),
                "mean_margin_genuine_rad": self.mean_margin_genuine_rad,
                "mean_margin_impostor_rad": self.mean_margin_impostor_rad,
                "mean_gt_roc_auc": self.mean_gt_roc_auc,
                "mean_gt_rank_accuracy": self.mean_gt_rank_accuracy}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> MethodSummary:
        """Rebuild from JSON (exact keys)."""
        fr_valid = row["fr_valid"]
        return cls(model=row["model"], method=row["method"], n_pairs=row["n_pairs"],
                   n_valid=row["n_valid"], n_trivial=row["n_trivial"], n_error=row["n_error"],
                   fr_itt=ProportionInterval(**row["fr_itt"]),
                   fr_valid=None if fr_valid is None else ProportionInterval(**fr_valid),
                   fr_valid_undefined_reason=row["fr_valid_undefined_reason"],
                   fr_itt_simple=ProportionInterval(**row["fr_itt_simple"]),
                   fr_itt_theorem=ProportionInterval(**row["fr_itt_theorem"]),
                   n_area_confound=row["n_area_confound"],
                   mean_margin_rad=row["mean_margin_rad"],
                   mean_d_high_rad=row["mean_d_high_rad"], mean_d_low_rad=row["mean_d_low_rad"],
                   fr_itt_genuine=_interval_from(row["fr_itt_genuine"]),
                   fr_itt_impostor=_interval_from(row["fr_itt_impostor"]),
                   mean_margin_genuine_rad=row["mean_margin_genuine_rad"],
                   mean_margin_impostor_rad=row["mean_margin_impostor_rad"],
                   mean_gt_roc_auc=row["mean_gt_roc_auc"],
                   mean_gt_rank_accuracy=row["mean_gt_rank_accuracy"])


def _interval_json(interval: ProportionInterval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.to_json()


def _interval_from(row: Mapping[str, Any] | None) -> ProportionInterval | None:
    return None if row is None else ProportionInterval(**row)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise_method(records: Sequence[PairRecord], *, alpha: float,
                     interval_method: ProportionMethod) -> MethodSummary:
    """Summarise the records of one (model, method)."""
    if not records:
        raise ValueError("no records to summarise")
    keys = {(r.model, r.method) for r in records}
    if len(keys) != 1:
        raise ValueError(f"records of several (model, method) mixed: {sorted(keys)}")
    ((model, method),) = keys
    valid = [r for r in records if r.status == "valid"]
    n_error = sum(is_error_status(r.status) for r in records)
    n_falsified = sum(r.falsified for r in records)
    kind = interval_method
    fr_itt = proportion_interval(n_falsified, len(records), method=kind, alpha=alpha)
    fr_valid = (proportion_interval(sum(r.falsified for r in valid), len(valid), method=kind,
                                    alpha=alpha) if valid else None)
    return MethodSummary(
        model=model, method=method, n_pairs=len(records), n_valid=len(valid),
        n_trivial=sum(r.status == "trivial" for r in records), n_error=n_error,
        fr_itt=fr_itt, fr_valid=fr_valid,
        fr_valid_undefined_reason=None if valid else "no valid pair",
        fr_itt_simple=proportion_interval(sum(r.falsified_simple for r in records),
                                          len(records), method=kind, alpha=alpha),
        fr_itt_theorem=proportion_interval(sum(r.falsified_theorem for r in records),
                                           len(records), method=kind, alpha=alpha),
        n_area_confound=sum(bool(r.area_confound) for r in valid),
        mean_margin_rad=_mean([r.margin_rad for r in valid]),
        mean_d_high_rad=_mean([r.d_high_rad for r in valid]),
        mean_d_low_rad=_mean([r.d_low_rad for r in valid]),
        fr_itt_genuine=_stratum_fr(records, True, alpha, kind),
        fr_itt_impostor=_stratum_fr(records, False, alpha, kind),
        mean_margin_genuine_rad=_mean([r.margin_rad for r in valid if r.is_genuine]),
        mean_margin_impostor_rad=_mean([r.margin_rad for r in valid if not r.is_genuine]),
        mean_gt_roc_auc=_mean([r.gt_roc_auc for r in records]),
        mean_gt_rank_accuracy=_mean([r.gt_rank_accuracy for r in records]))


def _stratum_fr(records: Sequence[PairRecord], genuine: bool, alpha: float,
                kind: ProportionMethod) -> ProportionInterval | None:
    stratum = [r for r in records if r.is_genuine == genuine]
    if not stratum:
        return None
    return proportion_interval(sum(r.falsified for r in stratum), len(stratum), method=kind,
                               alpha=alpha)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What claims are judged on: the gate and each method's summary."""

    run_name: str
    protocol_sha256: str
    manifest_sha256: str
    seed: int
    n_pairs: int
    gate: GateResult
    methods: Mapping[str, MethodSummary]

    def method(self, method_id: str) -> MethodSummary:
        """The summary of ``method_id``; an unknown id raises (no defaulted lookups)."""
        if method_id not in self.methods:
            raise KeyError(f"run {self.run_name} has no method {method_id!r}; "
                           f"it has {sorted(self.methods)}")
        return self.methods[method_id]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        gate = self.gate
        return {"run_name": self.run_name, "protocol_sha256": self.protocol_sha256,
                "manifest_sha256": self.manifest_sha256, "seed": self.seed,
                "n_pairs": self.n_pairs,
                "gate": {"model": gate.model, "auc": gate.auc, "n_genuine": gate.n_genuine,
                         "n_impostor": gate.n_impostor, "min_auc": gate.min_auc,
                         "passed": gate.passed, "tar_at_far_1e2": gate.tar_at_far_1e2,
                         "tar_at_far_1e3": gate.tar_at_far_1e3},
                "methods": {k: v.to_json() for k, v in sorted(self.methods.items())}}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RunSummary:
        """Rebuild from JSON (exact keys)."""
        return cls(run_name=row["run_name"], protocol_sha256=row["protocol_sha256"],
                   manifest_sha256=row["manifest_sha256"], seed=row["seed"],
                   n_pairs=row["n_pairs"], gate=GateResult(**row["gate"]),
                   methods={k: MethodSummary.from_json(v) for k, v in row["methods"].items()})
