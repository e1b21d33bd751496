"""Claim results: typed, validated verdicts with the numbers behind them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from faceattr.randomisation.partner import PartnerSensitivityResult
from faceattr.randomisation.stage import RandomisationResult
from faceattr.records import PairRecord
from faceattr.runfolder.determinism import DeterminismResult
from faceattr.runfolder.summary import MethodSummary, RunSummary
from faceattr.stats.strata import StrataResult
from faceattr.validity.artefacts import ArtefactResult
from faceattr.validity.metric_artefact import MetricValuesResult

__all__ = ["ClaimResult", "ClaimSpec", "Comparison", "RunArtefacts", "compare"]


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """One declared claim: its id, registry kind and parameters."""

    id: str
    kind: str
    params: tuple[tuple[str, Any], ...]

    def params_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)


@dataclass(frozen=True, slots=True, eq=False)
class RunArtefacts:
    """What a claim is judged on: the run's summary and records, and the protocol's other
    claims (a family correction such as Holm needs its siblings)."""

    summary: RunSummary
    records: Sequence[PairRecord]
    claims: Sequence[ClaimSpec]
    randomisation: RandomisationResult | None = None
    determinism: DeterminismResult | None = None
    comparison: Mapping[str, Any] | None = None  # comparison.json of the baseline stage
    artefacts: ArtefactResult | None = None  # artefacts.json of the artefact-control stage
    metric_values: MetricValuesResult | None = None  # metric_values.json ([metric_validity])
    partner_sensitivity: PartnerSensitivityResult | None = None  # partner_sensitivity.json
    strata: StrataResult | None = None  # strata.json of the stratified analysis ([strata])

    def method(self, method_id: str) -> MethodSummary:
        """The summary of one method (unknown ids raise)."""
        return self.summary.method(method_id)

    def records_of(self, method_id: str) -> list[PairRecord]:
        """The records of one method, in file order; an unknown method raises."""
        self.summary.method(method_id)
        return [r for r in self.records if r.method == method_id]

Comparison = Literal["<=", ">=", "contains", "=="]


def compare(observed: float, comparison: Comparison, threshold: float) -> bool:
    """Apply ``observed <comparison> threshold`` for the ordered comparisons."""
    if comparison == "<=":
        return observed <= threshold
    if comparison == ">=":
        return observed >= threshold
    if comparison == "==":
        return observed == threshold
    raise ValueError(f"comparison {comparison!r} is not an ordered comparison")


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The verdict of one pre-registered claim on one run.

    Attributes
    ----------
    claim_id, kind, family : str
        The claim's id (e.g. ``"control:oracle:fr<=0.05"``), its registry kind and family.
    statement : str
        The claim in plain language, with its threshold.
    passed : bool
        The verdict — a function of the data, never a constant (PITFALLS.md #8).
    statistic : str
        What was compared, e.g. ``"fr_itt.high"`` (the upper interval bound of the ITT FR).
    observed : float
        Its value on the run.
    comparison : str
        ``"<="``, ``">="``, ``"=="`` or ``"contains"`` (the interval contains the threshold).
    threshold : float
        The declared threshold (a fraction for rates).
    n : int
        Pairs behind the statistic.
    interval_low, interval_high : float or None
        The interval reported beside the statistic, if any.
    interval_method : str or None
        How that interval was computed.
    alpha : float
        Significance level of the interval.
    detail : str
        A one-line explanation of the verdict.
    p_value, p_corrected : float or None
        For claims decided by a test: its raw p-value and the family-corrected one.
    """

    claim_id: str
    kind: str
    family: str
    statement: str
    passed: bool
    statistic: str
    observed: float
    comparison: str
    threshold: float
    n: int
    interval_low: float | None
    interval_high: float | None
    interval_method: str | None
    alpha: float
    detail: str
    p_value: float | None = None
    p_corrected: float | None = None

    def __post_init__(self) -> None:
        for name in ("p_value", "p_corrected"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"claim {self.claim_id}: {name} must be in [0, 1]")
        for name in ("observed", "threshold", "alpha"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"claim {self.claim_id}: {name} must be finite")
        if self.n < 0:
            raise ValueError(f"claim {self.claim_id}: n must be >= 0")
        if (self.interval_low is None) != (self.interval_high is None):
            raise ValueError(f"claim {self.claim_id}: interval needs both bounds")
        if self.interval_low is not None and self.interval_high is not None \
                and not self.interval_low <= self.interval_high:
            raise ValueError(f"claim {self.claim_id}: interval bounds out of order")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ClaimResult:
        """Rebuild from JSON (exact keys)."""
        return cls(**row)
