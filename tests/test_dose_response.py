"""validity.json: every outcome against the truth per declared family and stratum, and the
report's validity section built from it and from artefacts.json."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from faceattr.claims import ClaimSpec
from faceattr.claims.validity import declared_families
from faceattr.io import read_json
from faceattr.records import PairRecord
from faceattr.report.validity import validity_context
from faceattr.stats.proportions import proportion_interval
from faceattr.validity.artefacts import ArtefactResult, artefact_cell
from faceattr.validity.dose_response import (
    STRATA,
    VALIDITY_FILE,
    Family,
    family_validity,
    write_validity,
)
from tests.helpers import FAMILY, graded_family, valid

FAMILY_SPEC = Family(claim_id="dose", methods=tuple(sorted(FAMILY)), quality="rank_accuracy",
                     primary_outcome="margin", n_resamples=200, alpha=0.05)


def _mixed(planted: bool = False) -> list[PairRecord]:
    """The graded family with every other pair an impostor pair."""
    return [replace(r, is_genuine=int(r.pair_id[1:]) % 2 == 0)
            for rows in graded_family(planted).values() for r in rows]


def _row(doc: dict[str, object], stratum: str, outcome: str) -> dict[str, object]:
    rows = doc["tracking"]
    assert isinstance(rows, list)
    return next(r for r in rows if r["stratum"] == stratum and r["outcome"] == outcome)


def test_every_outcome_and_stratum_is_correlated() -> None:
    doc = family_validity(_mixed(), FAMILY_SPEC, seed=3).to_json()
    assert doc["empty_strata"] == []
    assert {(r["stratum"], r["outcome"]) for r in doc["tracking"]} == {
        (s, o) for s in STRATA for o in
        ("pass_rate", "pass_rate_simple", "pass_rate_theorem", "margin", "concordance")}
    for stratum in STRATA:
        assert _row(doc, stratum, "margin")["spearman"] == pytest.approx(1.0)
    assert _row(doc, "genuine", "margin")["n_pairs"] == 10
    # every map passes the simple verdict: a saturated outcome is undefined, with a reason
    saturated = _row(doc, "all", "pass_rate_simple")
    assert saturated["spearman"] is None
    assert "constant" in str(saturated["undefined_reason"])


def test_planted_backwards_outcome_shows_as_negative_correlation() -> None:
    doc = family_validity(_mixed(planted=True), FAMILY_SPEC, seed=3).to_json()
    assert _row(doc, "all", "margin")["spearman"] == pytest.approx(-1.0)


def test_a_missing_stratum_is_named_not_dropped() -> None:
    rows = [r for rs in graded_family().values() for r in rs]  # all genuine
    doc = family_validity(rows, FAMILY_SPEC, seed=3).to_json()
    assert doc["empty_strata"] == ["impostor"]
    assert {r["stratum"] for r in doc["tracking"]} == {"all", "genuine"}


def test_document_is_deterministic_and_strict_json(tmp_path: Path) -> None:
    first = write_validity(tmp_path, _mixed(), [FAMILY_SPEC], seed=3)
    assert first is not None
    text = first.read_text()
    assert "NaN" not in text
    write_validity(tmp_path, list(reversed(_mixed())), [FAMILY_SPEC], seed=3)
    assert first.read_text() == text  # record order does not matter
    write_validity(tmp_path, _mixed(), [FAMILY_SPEC], seed=4)
    assert first.read_text() != text  # the bootstrap follows the seed
    assert json.loads(text)["families"][0]["claim_id"] == "dose"


def test_stale_document_is_removed_when_no_family_is_declared(tmp_path: Path) -> None:
    write_validity(tmp_path, _mixed(), [FAMILY_SPEC], seed=3)
    assert write_validity(tmp_path, _mixed(), [], seed=3) is None
    assert not (tmp_path / VALIDITY_FILE).exists()


def test_families_come_from_truth_tracking_claims() -> None:
    specs = [ClaimSpec(id="dose", kind="truth_tracking", params=(
                 ("methods", sorted(FAMILY)), ("min_spearman", 0.9), ("n_resamples", 200),
                 ("outcome", "margin"), ("quality", "rank_accuracy"))),
             ClaimSpec(id="gate", kind="model_gate", params=(("min_auc", 0.9),))]
    assert declared_families(specs, set(FAMILY)) == [FAMILY_SPEC]


def _artefacts_json(tmp_path: Path) -> None:
    tested = [valid(i, "oracle", False) for i in range(10)]
    control = [valid(i, "oracle", i >= 4) for i in range(10)]  # 4 of 10 passes explained
    cell = artefact_cell("oracle", "mean", tested, control, alpha=0.05,
                         interval_method="wilson")
    result = ArtefactResult(n_pairs=10, max_overlap_frac=0.25, cells=(cell,))
    (tmp_path / "artefacts.json").write_text(json.dumps(result.to_json(), allow_nan=False))


def test_report_context_ranks_maps_and_lists_artefact_cells(tmp_path: Path) -> None:
    write_validity(tmp_path, _mixed(planted=True), [FAMILY_SPEC], seed=3)
    _artefacts_json(tmp_path)
    context = validity_context(tmp_path)
    assert context is not None
    family = context["families"][0]
    assert family["strata"] == list(STRATA)
    ranks = [(r["method"], r["rank_quality"], r["rank_outcome"]) for r in family["ranking"]]
    assert ranks == [("m0", 1.0, 4.0), ("m1", 2.0, 3.0), ("m2", 3.0, 2.0), ("m3", 4.0, 1.0)]
    assert [c["primary"] for c in family["correlations"]].count(True) == 1
    (row,) = context["artefacts"]["rows"]
    explained = row["simple"]["explained"]
    assert explained["estimate"] == pytest.approx(0.4)
    assert explained == proportion_interval(4, 10, method="wilson", alpha=0.05).to_json()


def test_no_validity_section_without_its_artefacts(tmp_path: Path) -> None:
    assert validity_context(tmp_path) is None
    _artefacts_json(tmp_path)
    context = validity_context(tmp_path)
    assert context is not None
    assert context["families"] == []
    assert read_json(tmp_path / "artefacts.json")["n_pairs"] == 10
