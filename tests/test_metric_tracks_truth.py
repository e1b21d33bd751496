# issue #22 item 4: the metric_validity section of validity.json and the metric_tracks_truth
# claim ("outcome X tracks the truth at least as well as deletion AUC"), on planted records and
# on a small real run.
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import faceattr
from faceattr.claims import ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.validity.dose_response import Family
from faceattr.validity.metric_artefact import (
    METRIC_VALUES_FILE,
    MetricValueRow,
    MetricValuesResult,
    load_metric_values,
)
from faceattr.validity.metric_section import (
    measure_matrices,
    metric_validity_section,
    paired_comparison,
    spearman_draws,
)
from faceattr.validity.tracking import _bootstrap
from tests.helpers import SMALL_PROTOCOL, run, valid

METHODS = tuple(f"m{k}" for k in range(6))
N_PAIRS = 20
#: deletion AUC's per-map bias: m1 looks better than m3 to it (a planted misranking)
DELETION_BIAS = {"m1": -0.5}
FAMILY = ClaimSpec(id="fam", kind="truth_tracking",
                   params=(("methods", list(METHODS)), ("min_spearman", 0.5),
                           ("outcome", "margin"), ("quality", "rank_accuracy")))


def _quality(method: str, i: int) -> float:
    rng = numpy_generator(3, "test_metric_tracks_truth", method, i)
    return float(min(max(int(method[1:]) / 5 + rng.normal(0.0, 0.03), 0.0), 1.0))


def _records(margin: str = "truth") -> list[PairRecord]:
    out = []
    for method in METHODS:
        for i in range(N_PAIRS):
            q = _quality(method, i)
            out.append(replace(valid(i, method, falsified=i % 3 == 0), gt_rank_accuracy=q,
                               gt_roc_auc=0.5 + q / 2, is_genuine=i % 2 == 0,
                               margin_rad=q if margin == "truth" else 1.0 - q))
    return out


def _values(records: list[PairRecord]) -> MetricValuesResult:
    by_key = {(r.method, r.pair_id): r for r in records}
    pair_ids = tuple(sorted({r.pair_id for r in records}))
    rows = []
    for method in METHODS:
        for pair_id in pair_ids:
            record = by_key[(method, pair_id)]
            q = record.gt_rank_accuracy
            assert q is not None
            deletion = 1.0 - q + DELETION_BIAS.get(method, 0.0)
            rows.append(MetricValueRow(method=method, pair_id=pair_id,
                                       is_genuine=record.is_genuine, status="valid",
                                       map_sha256=record.map_sha256,
                                       values=(("deletion_auc", deletion),
                                               ("insertion_auc", q))))
    return MetricValuesResult(n_pairs=len(pair_ids), pair_ids=pair_ids, methods=METHODS,
                              metrics=("deletion_auc", "insertion_auc"), settings={},
                              rows=tuple(rows))


def _judge(params: dict[str, Any], records: list[PairRecord],
           values: MetricValuesResult | None) -> Any:
    spec = ClaimSpec(id="c", kind="metric_tracks_truth", params=tuple(sorted(params.items())))
    by_method = {m: [r for r in records if r.method == m] for m in METHODS}
    artefacts = RunArtefacts(summary=run(by_method), records=records, claims=(spec, FAMILY),
                             metric_values=values)
    return evaluate_claim(spec, artefacts)


def test_a_better_outcome_passes_and_a_backwards_one_fails() -> None:
    records = _records()
    values = _values(records)
    better = _judge({"outcome": "margin", "family": "fam"}, records, values)
    assert better.passed, better.detail
    assert better.kind == "metric_tracks_truth"
    assert "rho(margin) = 1.000" in better.detail
    assert better.interval_low is not None
    assert better.interval_low >= 0.0
    # planted: the margin runs backwards (the worst map has the largest margin)
    backwards = _judge({"outcome": "margin", "family": "fam"}, _records("backwards"), values)
    assert not backwards.passed
    assert "rho(margin) = -1.000" in backwards.detail
    assert backwards.interval_high is not None
    assert backwards.interval_high < 0.0


def test_the_reference_itself_is_not_better_than_a_perfect_metric() -> None:
    records = _records()
    values = _values(records)
    # deletion AUC misranks m1: it does not track as well as insertion AUC (planted = truth)
    result = _judge({"outcome": "deletion_auc", "reference": "insertion_auc", "family": "fam"},
                    records, values)
    assert not result.passed
    assert result.observed < 0.0
    # ... unless the declared margin forgives the difference
    forgiven = _judge({"outcome": "deletion_auc", "reference": "insertion_auc",
                       "family": "fam", "margin": 1.0}, records, values)
    assert forgiven.passed


def test_maps_that_are_not_the_run_maps_fail_the_claim() -> None:
    records = _records()
    values = _values(records)
    tampered = replace(values, rows=(replace(values.rows[0], map_sha256="f" * 64),
                                     *values.rows[1:]))
    result = _judge({"outcome": "margin", "family": "fam"}, records, tampered)
    assert not result.passed
    assert "other maps than the falsification test's: m0/p0000" in result.detail


@pytest.mark.parametrize(("params", "values", "match"), [
    ({"outcome": "margin", "family": "fam"}, None, r"declare a \[metric_validity\] table"),
    ({"outcome": "margin", "family": "nope"}, "ok", "not the id of a truth_tracking claim"),
    ({"outcome": "road_gap", "family": "fam"}, "ok", "not among"),
    ({"outcome": "deletion_auc", "family": "fam"}, "ok", "outcome and reference are both"),
])
def test_misdeclared_claims_are_errors(params: dict[str, Any], values: str | None,
                                       match: str) -> None:
    records = _records()
    with pytest.raises(ValueError, match=match):
        _judge(params, records, None if values is None else _values(records))


def test_the_comparison_is_paired_with_the_rows_intervals() -> None:
    records = _records()
    values = _values(records)
    family = Family(claim_id="fam", methods=METHODS, quality="rank_accuracy",
                    primary_outcome="margin", n_resamples=300, alpha=0.05)
    section = metric_validity_section(records, values, [family], seed=7)
    json.dumps(section, allow_nan=False)
    assert section["map_mismatches"] == []
    rows = {(r["measure"], r["stratum"], r["quality"]): r for r in section["rows"]}
    assert rows[("insertion_auc", "all", "rank_accuracy")]["spearman"] == pytest.approx(1.0)
    assert rows[("deletion_auc", "all", "rank_accuracy")]["spearman"] < 0.9
    comparisons = {(c["measure"], c["stratum"]): c for c in section["comparisons"]}
    assert {m for m, _ in comparisons} == {"insertion_auc", "margin", "concordance",
                                          "pass_rate_simple", "pass_rate_theorem"}
    margin = comparisons[("margin", "all")]
    assert margin["rho_measure"] == rows[("margin", "all", "rank_accuracy")]["spearman"]
    assert margin["rho_reference"] == rows[("deletion_auc", "all", "rank_accuracy")]["spearman"]
    # the draws behind the comparison are the rows' bootstrap draws (same stream, same pairs)
    q, (oriented,) = measure_matrices(records, values, METHODS, quality="rank_accuracy",
                                      stratum="all", measures=("deletion_auc",))
    rng = numpy_generator(7, "metric_validity", "fam", "all", "rank_accuracy")
    draws = spearman_draws(q, oriented, rng=rng, n_resamples=300)
    low, high = np.quantile(draws[np.isfinite(draws)], [0.025, 0.975])
    row = rows[("deletion_auc", "all", "rank_accuracy")]
    assert (row["low"], row["high"]) == (pytest.approx(low), pytest.approx(high))
    again = _bootstrap(q, oriented, n_resamples=300, alpha=0.05,
                       rng=numpy_generator(7, "metric_validity", "fam", "all", "rank_accuracy"))
    assert again == (pytest.approx(low), pytest.approx(high))
    direct = paired_comparison(records, values, METHODS, family="fam", measure="margin",
                               reference="deletion_auc", quality="rank_accuracy",
                               stratum="all", seed=7, n_resamples=300, alpha=0.05)
    assert direct.to_json() == margin


def test_a_mismatched_map_voids_the_section() -> None:
    records = _records()
    values = _values(records)
    tampered = replace(values, rows=(replace(values.rows[0], map_sha256="f" * 64),
                                     *values.rows[1:]))
    family = Family(claim_id="fam", methods=METHODS, quality="rank_accuracy",
                    primary_outcome="margin", n_resamples=100, alpha=0.05)
    section = metric_validity_section(records, tampered, [family], seed=7)
    assert section["map_mismatches"] == ["m0/p0000"]
    assert section["rows"] == []
    assert section["comparisons"] == []


def test_the_artefact_round_trips_strictly() -> None:
    values = _values(_records())
    assert MetricValuesResult.from_json(values.to_json()) == values
    document = values.to_json()
    document["rows"][0]["values"].pop("insertion_auc")
    with pytest.raises(ValueError, match=r"missing \['insertion_auc'\]"):
        MetricValuesResult.from_json(document)
    with pytest.raises(ValueError, match="one row per"):
        replace(values, rows=values.rows[1:])
    with pytest.raises(ValueError, match="carries no values"):
        MetricValueRow(method="m", pair_id="p", is_genuine=True, status="trivial",
                       map_sha256=None, values=(("deletion_auc", 0.5),))


# --- a small real run: the stage, the ledger, validity.json, the claim and the report ----------

_METHODS = "\n".join(['[[methods]]\nmethod = "oracle"\n',
                      '[[methods]]\nid = "oracle_blur8"\nmethod = "oracle"\nsigma_px = 8.0\n',
                      '[[methods]]\nmethod = "random"\n', '[[methods]]\nmethod = "saliency"\n'])
_CLAIMS = """
[metric_validity]
n_pairs = 4
n_steps = 4
metrics = ["deletion_auc", "insertion_auc", "road_gap"]

[[claims]]
id = "dose"
kind = "truth_tracking"
methods = ["oracle", "oracle_blur8", "random", "saliency"]
quality = "rank_accuracy"
outcome = "margin"
min_spearman = -1.0

[[claims]]
id = "margin_vs_deletion"
kind = "metric_tracks_truth"
outcome = "margin"
family = "dose"
margin = 2.0
n_resamples = 200
"""


def test_a_run_computes_the_metrics_on_its_own_maps(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(SMALL_PROTOCOL.format(seed=5, n_pairs=6, k=3, pairs_per_batch=6,
                                          methods=_METHODS, claims=_CLAIMS), encoding="utf-8")
    result = faceattr.run(path, reports_dir=tmp_path / "reports")
    root = result.folder
    values = load_metric_values(root)
    assert values is not None
    assert values.n_pairs == 4
    assert values.methods == ("oracle", "oracle_blur8", "random", "saliency")
    assert values.metrics == ("deletion_auc", "insertion_auc", "road_gap")
    assert values.map_mismatches(result.records) == []  # the same maps as the run's records
    ledger = json.loads((root / "provenance.json").read_text())["artefacts"]
    assert METRIC_VALUES_FILE in ledger
    assert "validity.json" in ledger
    section = json.loads((root / "validity.json").read_text())["metric_validity"]
    assert section["n_pairs"] == 4
    assert {r["measure"] for r in section["rows"]} >= {"deletion_auc", "margin", "road_gap"}
    assert result.claims is not None
    (claim,) = [c for c in result.claims["claims"] if c["claim_id"] == "margin_vs_deletion"]
    assert claim["outcome"] == "passed", claim
    report = (root / "report.html").read_text()
    assert "Which measure tracks the truth?" in report
    assert "deletion_auc" in report
