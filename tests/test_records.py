from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from faceattr.records import PairRecord


def valid_record(**changes: Any) -> PairRecord:
    record = PairRecord(
        pair_id="p1", model="m", method="saliency", is_genuine=True, status="valid",
        status_reason=None, falsified=False, verdict_rule="simple", falsified_simple=False,
        falsified_theorem=False, p_high=0.001, p_low=0.002, score_clean=0.8, n_high_px=10,
        n_low_px=10, n_boundary_ties=0, area_ratio=1.0, area_confound=False,
        map_sha256="0" * 64, map_range=2.0, map_entropy_norm=0.8, map_gini=0.4,
        gt_roc_auc=0.9, gt_rank_accuracy=0.6, gt_mass_accuracy=None,
        attribution_sum=3.0, convergence_delta=0.01, target_grad_norm=0.5,
        drift_high_rad=(1.0, 1.2), drift_low_rad=(0.1, 0.2),
        score_drop_high=(0.5, 0.6), score_drop_low=(0.01, 0.02), d_high_rad=1.1,
        d_low_rad=0.15, sd_high_rad=0.14, sd_low_rad=0.07, margin_rad=0.95,
        pairwise_violation_frac=0.0, regions_sha256="1" * 64)
    return replace(record, **changes)


def test_round_trip() -> None:
    record = valid_record()
    assert PairRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(("field", "value", "match"), [
    ("pairwise_violation_frac", 50.0, r"pairwise_violation_frac=50.0 outside \[0.0, 1.0\]"),
    ("d_high_rad", float("nan"), "d_high_rad must be finite"),
    ("drift_high_rad", (1.0, 4.0), r"drift_high_rad=4.0 outside"),
    ("score_clean", 1.5, "score_clean=1.5 outside"),
    ("status", "ok", "not valid|trivial|error"),
    ("drift_low_rad", (0.1,), "K >= 2 draws per region"),
    ("gt_roc_auc", 1.2, r"gt_roc_auc=1.2 outside"),
    ("gt_mass_accuracy", 90.0, r"gt_mass_accuracy=90.0 outside"),
    ("gt_rank_accuracy", None, "both present or both absent"),
    ("regions_sha256", None, "a valid record needs regions_sha256"),
    ("regions_sha256", "XYZ", "a valid record needs regions_sha256"),
])
def test_out_of_range_values_are_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        valid_record(**{field: value})


def test_trivial_pairs_count_as_falsified() -> None:
    base = dict(status="trivial", status_reason="constant map", falsified=False,
                falsified_simple=False, falsified_theorem=True, p_high=None, p_low=None,
                area_ratio=None, area_confound=None,
                drift_high_rad=(), drift_low_rad=(), score_drop_high=(), score_drop_low=(),
                d_high_rad=None, d_low_rad=None, sd_high_rad=None, sd_low_rad=None,
                margin_rad=None, pairwise_violation_frac=None, n_high_px=None, n_low_px=None,
                n_boundary_ties=None, regions_sha256=None)
    with pytest.raises(ValueError, match="counts as falsified"):
        valid_record(**base)
    assert valid_record(**{**base, "falsified": True, "falsified_simple": True}).falsified
    with pytest.raises(ValueError, match="has no regions"):
        valid_record(**{**base, "falsified": True, "falsified_simple": True,
                        "regions_sha256": "1" * 64})


def test_primary_verdict_must_match_its_rule() -> None:
    with pytest.raises(ValueError, match="disagrees with the primary theorem verdict"):
        valid_record(verdict_rule="theorem", falsified_theorem=True)


def test_reading_requires_exact_keys() -> None:
    row = valid_record().to_json()
    row["is_falsified"] = row.pop("falsified")  # the research code's key mismatch (PITFALLS #1)
    with pytest.raises(ValueError, match=r"missing \['falsified'\], unexpected \['is_falsified'\]"):
        PairRecord.from_json(row)
