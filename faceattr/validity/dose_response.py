"""``validity.json``: every falsification outcome against the truth, per declared family.

A ``truth_tracking`` claim judges one outcome on one family of maps. The report must also show
how the *other* outcomes fare on the same family — whether the simple verdict saturates, whether
the Theorem 3.5 verdict or the graded margin ranks the maps as the truth does — and how the
genuine and impostor strata behave. This module computes, for each family a protocol declares
in a ``truth_tracking`` claim, Spearman's correlation between the family's ground-truth quality
(the claim's measure) and every outcome of :data:`~faceattr.validity.tracking.OUTCOMES`, on all
pairs and on each stratum, with pair-bootstrap intervals (Efron & Tibshirani 1993; quality as in
Arras et al., "CLEVR-XAI", Information Fusion 81, 2022).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from faceattr.io import read_json, write_json
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.validity.tracking import OUTCOMES, Outcome, Quality, TrackingResult, truth_tracking

__all__ = ["STRATA", "VALIDITY_FILE", "Family", "FamilyValidity", "family_validity",
           "read_validity", "write_validity"]

VALIDITY_FILE = "validity.json"
STRATA: tuple[str, ...] = ("all", "genuine", "impostor")


@dataclass(frozen=True, slots=True)
class Family:
    """A family of maps declared by a ``truth_tracking`` claim."""

    claim_id: str
    methods: tuple[str, ...]
    quality: Quality
    primary_outcome: Outcome
    n_resamples: int
    alpha: float


@dataclass(frozen=True, slots=True)
class FamilyValidity:
    """Every outcome's rank agreement with the truth on one family, per stratum.

    Attributes
    ----------
    family : Family
    tracking : tuple of (str, TrackingResult)
        ``(stratum, result)`` for each stratum with pairs and each outcome, in
        :data:`STRATA` x :data:`OUTCOMES` order.
    empty_strata : tuple of str
        Strata without pairs in the run (nothing to correlate).
    """

    family: Family
    tracking: tuple[tuple[str, TrackingResult], ...]
    empty_strata: tuple[str, ...]

    def __post_init__(self) -> None:
        for stratum, result in self.tracking:
            if stratum not in STRATA:
                raise ValueError(f"unknown stratum {stratum!r}")
            if result.quality != self.family.quality or result.methods != self.family.methods:
                raise ValueError("a tracking result belongs to another family")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (None for undefined values, never NaN)."""
        f = self.family
        return {"claim_id": f.claim_id, "methods": list(f.methods), "quality": f.quality,
                "primary_outcome": f.primary_outcome, "n_resamples": f.n_resamples,
                "alpha": f.alpha, "empty_strata": list(self.empty_strata),
                "tracking": [{"stratum": s} | r.to_json() for s, r in self.tracking]}


def _stratum(records: Sequence[PairRecord], stratum: str) -> list[PairRecord]:
    if stratum == "all":
        return list(records)
    return [r for r in records if r.is_genuine == (stratum == "genuine")]


def family_validity(records: Sequence[PairRecord], family: Family, *,
                    seed: int) -> FamilyValidity:
    """Correlate the family's quality with every outcome, on all pairs and on each stratum.

    Each (stratum, outcome) bootstrap has its own stream derived from
    ``(seed, "dose_response", claim_id, stratum, outcome)``.
    """
    mine = [r for r in records if r.method in set(family.methods)]
    rows: list[tuple[str, TrackingResult]] = []
    empty: list[str] = []
    for stratum in STRATA:
        subset = _stratum(mine, stratum)
        if not subset:
            empty.append(stratum)
            continue
        for outcome in OUTCOMES:
            rng = numpy_generator(seed, "dose_response", family.claim_id, stratum, outcome)
            rows.append((stratum, truth_tracking(
                subset, family.methods, quality=family.quality, outcome=cast(Outcome, outcome),
                rng=rng, n_resamples=family.n_resamples, alpha=family.alpha)))
    return FamilyValidity(family=family, tracking=tuple(rows), empty_strata=tuple(empty))


def write_validity(run_dir: Path, records: Sequence[PairRecord], families: Sequence[Family],
                   *, seed: int,
                   metric_validity: Mapping[str, Any] | None = None) -> Path | None:
    """Write ``validity.json`` for the declared families (nothing when none is declared).

    Rewritten on every validation: claims may change without changing the run (a stale file
    is removed when the protocol no longer declares a family). ``metric_validity`` is the
    section of :func:`faceattr.validity.metric_section.metric_validity_section` (every
    evaluation metric and outcome against the truth, on the run's ``metric_values.json``);
    ``null`` when the protocol declares no ``[metric_validity]``.
    """
    path = run_dir / VALIDITY_FILE
    if not families:
        path.unlink(missing_ok=True)
        return None
    document = {"seed": seed, "strata": list(STRATA), "outcomes": list(OUTCOMES),
                "families": [family_validity(records, f, seed=seed).to_json()
                             for f in families],
                "metric_validity": None if metric_validity is None else dict(metric_validity)}
    write_json(path, document)
    return path


def read_validity(run_dir: Path) -> Mapping[str, Any] | None:
    """The run's ``validity.json``, or None when the protocol declares no family."""
    path = run_dir / VALIDITY_FILE
    return read_json(path) if path.exists() else None
