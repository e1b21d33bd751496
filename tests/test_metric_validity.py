# Known answers of faceattr's evaluation metrics (faceattr/validity/metrics.py) and of the
# metric-validity table (faceattr/validity/metric_validity.py).
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.data.pairs import Pair
from faceattr.experiments.metric_table import main
from faceattr.falsification import PairInputs
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.rng import numpy_generator
from faceattr.testing._common import changed_streams, global_rng_state
from faceattr.validity.metric_validity import (
    FALSIFICATION_MEASURES,
    MetricValidityTable,
    collect_metric_values,
    metric_validity,
)
from faceattr.validity.metrics import (
    METRICS,
    MetricSettings,
    PairMetrics,
    evaluate_maps,
    faithfulness_subsets,
    metric_values,
    removal_counts,
    trapezoid,
)
from tests.helpers import valid

SIDE = 16
REGION = (slice(6, 10), slice(6, 10))  # the only pixels the toy model looks at (16 of 256)


class _RegionNet(nn.Module):
    """Embedding = (the region's pixel values - 0.5, 1): the score depends only on REGION."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, REGION[0], REGION[1]].flatten(1) - 0.5
        return torch.cat([4.0 * region, torch.ones(x.shape[0], 1)], dim=1)


class _PixelNet(nn.Module):
    """Embedding = (1, x[channel 0, pixel P]): s = cos((1, x'_P), (1, x_P)) by hand."""

    def __init__(self, side: int, pixel: int) -> None:
        super().__init__()
        self.side, self.pixel = side, pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = x[:, 0].flatten(1)[:, self.pixel]
        return torch.stack([torch.ones_like(value), value], dim=1)


def _model(network: nn.Module, side: int) -> VerificationModel:
    return VerificationModel(name="toy", network=network.eval(), input_size_px=side,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


def _inputs(model: VerificationModel, probes: np.ndarray) -> PairInputs:
    """Genuine pairs whose partner is the probe itself (clean score 1)."""
    n = probes.shape[0]
    pairs = [Pair(pair_id=f"p{i}", image_a=f"a{i}", image_b=f"a{i}", identity_a=str(i),
                  identity_b=str(i), is_genuine=True) for i in range(n)]
    emb = embed_batched(model, torch.from_numpy(probes), chunk_size=8).numpy()
    return PairInputs(pairs=pairs, probes=probes, probe_embeddings=emb, partner_embeddings=emb)


@pytest.fixture(scope="module")
def toy() -> tuple[VerificationModel, PairInputs, np.ndarray]:
    rng = numpy_generator(5, "test_metric_validity", "toy")
    probes = rng.uniform(0.0, 0.4, size=(6, 3, SIDE, SIDE)).astype(np.float32)
    probes[:, :, REGION[0], REGION[1]] = rng.uniform(0.7, 1.0, size=(6, 3, 4, 4))
    oracle = np.zeros((6, SIDE, SIDE))
    oracle[:, REGION[0], REGION[1]] = 1.0
    oracle += 1e-3 * rng.random(oracle.shape)  # no ties
    model = _model(_RegionNet(), SIDE)
    return model, _inputs(model, probes), oracle


TOY = MetricSettings(n_steps=8, blur_sigma_px=2.0, faithfulness_runs=40,
                     faithfulness_subset_px=24, flip_pixels_per_step=16, forward_chunk=16,
                     pairs_per_batch=4)


def _mean(results: list[PairMetrics], name: str) -> float:
    values = [metric_values(r)[name] for r in results]
    assert all(v is not None for v in values)
    return float(np.mean(values))  # type: ignore[arg-type]


def _evaluate(toy: tuple, maps: np.ndarray, method: str = "m", seed: int = 0,
              settings: MetricSettings = TOY) -> list[PairMetrics]:
    model, inputs, _ = toy
    return evaluate_maps(model, inputs, maps, method_id=method, seed=seed, settings=settings)


# --- known answers on the toy model -------------------------------------------------------

def test_oracle_beats_inverted_and_random_maps(toy: tuple) -> None:
    oracle = toy[2]
    random = numpy_generator(5, "test_metric_validity", "random").random(oracle.shape)
    res = {name: _evaluate(toy, maps, method=name)
           for name, maps in (("oracle", oracle), ("inverted", -oracle), ("random", random))}
    mean = {name: {m.name: _mean(r, m.name) for m in METRICS} for name, r in res.items()}
    for other in ("inverted", "random"):
        assert mean["oracle"]["deletion_auc"] < mean[other]["deletion_auc"]
        assert mean["oracle"]["insertion_auc"] > mean[other]["insertion_auc"]
        assert mean["oracle"]["road_morf_area"] < mean[other]["road_morf_area"]
        assert mean["oracle"]["pixel_flipping_area"] < mean[other]["pixel_flipping_area"]
    assert mean["oracle"]["faithfulness_correlation"] > mean["random"]["faithfulness_correlation"]
    assert mean["oracle"]["faithfulness_correlation"] > 0.5
    for r in res["oracle"]:
        assert r.road is not None
        assert r.road.morf_area < r.road.lerf_area
        # LeRF never reaches the region before 90% (240 background px > floor(0.9 * 256))
        assert r.road.lerf_scores == pytest.approx([1.0] * len(r.road.lerf_scores), abs=1e-6)
        assert r.deletion is not None
        assert r.deletion.scores[0] == pytest.approx(1.0, abs=1e-6)
        assert r.insertion is not None
        assert r.insertion.scores[-1] == r.deletion.scores[0]


def test_constant_map_is_trivial_with_a_reason(toy: tuple) -> None:
    results = _evaluate(toy, np.full(toy[2].shape, 0.3))
    assert all(r.status == "trivial" and r.reason and r.deletion is None for r in results)
    assert all(v is None for v in metric_values(results[0]).values())
    json.dumps([r.to_json() for r in results], allow_nan=False)


def test_non_finite_map_is_refused(toy: tuple) -> None:
    maps = toy[2].copy()
    maps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        _evaluate(toy, maps)


# --- exactness against hand-computed cases --------------------------------------------------

P = 5  # the pixel the hand model reads
V = 0.9


def _hand() -> tuple[VerificationModel, PairInputs, np.ndarray]:
    model = _model(_PixelNet(4, P), 4)
    probe = np.full((1, 3, 4, 4), 0.5, dtype=np.float32)
    probe[0, :, P // 4, P % 4] = V
    phi = np.arange(16, 0, -1, dtype=np.float64)  # pixel i has rank i (most relevant first)
    phi[[P, 6]] = phi[[6, P]]  # P is the 7th most relevant (rank 6)
    return model, _inputs(model, probe), phi.reshape(1, 4, 4)


def _cos(a: float, b: float) -> float:
    return (1.0 + a * b) / math.sqrt((1.0 + a * a) * (1.0 + b * b))


def test_hand_computed_deletion_insertion_pixel_flipping_and_road() -> None:
    model, inputs, phi = _hand()
    settings = MetricSettings(n_steps=4, deletion_fill="zero", insertion_baseline="zero",
                              road_fractions=(0.25, 0.5), road_noise_sd=0.0,
                              faithfulness_runs=3, faithfulness_subset_px=2,
                              flip_pixels_per_step=4, flip_fill="zero", forward_chunk=4)
    (r,) = evaluate_maps(model, inputs, phi, method_id="m", seed=0, settings=settings)
    s0 = _cos(0.0, V)  # P zeroed
    assert r.deletion is not None
    assert r.insertion is not None
    assert r.road is not None
    assert r.deletion.fractions == (0.0, 0.25, 0.5, 0.75, 1.0)
    # P (rank 6) is removed from step 2 (k = 8) on
    assert r.deletion.scores == pytest.approx([1, 1, s0, s0, s0], abs=1e-6)
    assert r.deletion.auc == pytest.approx(0.25 * (1 + (1 + s0) / 2 + 2 * s0), abs=1e-6)
    assert r.insertion.scores == pytest.approx([s0, s0, 1, 1, 1], abs=1e-6)
    assert r.insertion.auc == pytest.approx(0.25 * (s0 + (s0 + 1) / 2 + 2), abs=1e-6)
    assert r.pixel_flipping is not None
    assert r.pixel_flipping.scores == pytest.approx([1, s0, s0, s0], abs=1e-6)
    assert r.pixel_flipping.area == pytest.approx((1 + s0) / 2 + 2 * s0, abs=1e-6)
    # ROAD: a constant image around P imputes P to 0.5 exactly; LeRF never reaches P (rank 9
    # from the bottom) by 50%
    s_nli = _cos(0.5, V)
    assert r.road.n_removed == (4, 8)
    assert r.road.morf_scores == pytest.approx([1, s_nli], abs=1e-6)
    assert r.road.morf_area == pytest.approx((1 + s_nli) / 2, abs=1e-6)
    assert r.road.lerf_scores == pytest.approx([1, 1], abs=1e-6)
    assert r.road.gap == pytest.approx(1 - (1 + s_nli) / 2, abs=1e-6)


def test_hand_computed_faithfulness_correlation() -> None:
    model, inputs, phi = _hand()
    settings = MetricSettings(faithfulness_runs=4, faithfulness_subset_px=2,
                              faithfulness_fill="zero", forward_chunk=4)
    subsets = [[np.array([P, 0]), np.array([1, 2]), np.array([P, 15]), np.array([3, 14])]]
    (r,) = evaluate_maps(model, inputs, phi, method_id="m", seed=0, settings=settings,
                         subsets=subsets)
    flat = phi.ravel()
    sums = [flat[s].sum() for s in subsets[0]]
    drop = 1.0 - _cos(0.0, V)
    drops = [drop, 0.0, drop, 0.0]
    assert r.faithfulness is not None
    assert r.faithfulness.relevance_sums == tuple(sums)
    assert r.faithfulness.score_drops == pytest.approx(drops, abs=1e-6)
    assert r.faithfulness.correlation == pytest.approx(np.corrcoef(sums, drops)[0, 1], abs=1e-5)
    # no subset touches P: the drops are constant and the correlation is undefined
    none = [[np.array([0, 1]), np.array([2, 3]), np.array([4, 6])]]
    (u,) = evaluate_maps(model, inputs, phi, method_id="m", seed=0,
                         settings=replace(settings, faithfulness_runs=3), subsets=none)
    assert u.faithfulness is not None
    assert u.faithfulness.correlation is None
    assert "constant" in (u.faithfulness.undefined_reason or "")
    assert metric_values(u)["faithfulness_correlation"] is None


def test_trapezoid_and_removal_counts() -> None:
    assert trapezoid([1.0, 3.0, 2.0], [0.0, 0.5, 1.0]) == pytest.approx(0.5 * 2 + 0.5 * 2.5)
    assert removal_counts(4096, [0.1, 0.3, 0.25, 0.9]) == (409, 1228, 1024, 3686)
    with pytest.raises(ValueError, match="1-D"):
        trapezoid([1.0, 2.0], [0.0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"deletion_fill": "nli"}, "ROAD"), ({"insertion_baseline": "nli"}, "ROAD"),
    ({"road_fractions": (0.5, 0.2)}, "increase"), ({"road_fractions": (0.5, 1.0)}, "inside"),
    ({"n_steps": 0}, "n_steps"), ({"faithfulness_runs": 2}, "3 points"),
    ({"blur_sigma_px": 0.0}, "blur_sigma_px"), ({"road_noise_sd": -1.0}, "road_noise_sd")])
def test_settings_are_validated(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MetricSettings(**kwargs)


# --- keyed randomness -------------------------------------------------------------------

def _jsons(results: list[PairMetrics]) -> list[str]:
    return [json.dumps(r.to_json(), allow_nan=False, sort_keys=True) for r in results]


def test_same_seed_same_values_and_no_global_rng(toy: tuple) -> None:
    before = global_rng_state()
    first = _jsons(_evaluate(toy, toy[2]))
    assert changed_streams(before, global_rng_state()) == []
    assert first == _jsons(_evaluate(toy, toy[2]))
    other = _evaluate(toy, toy[2], seed=1)
    mine = _evaluate(toy, toy[2])
    # the keyed parts change with the seed; deletion (deterministic fill) does not
    assert [r.faithfulness.relevance_sums for r in other] != \
        [r.faithfulness.relevance_sums for r in mine]  # type: ignore[union-attr]
    assert [r.road.morf_scores for r in other] != [r.road.morf_scores for r in mine]  # type: ignore[union-attr]
    assert [r.deletion.scores for r in other] == [r.deletion.scores for r in mine]  # type: ignore[union-attr]


def test_values_do_not_depend_on_other_methods_pairs_or_grouping(toy: tuple) -> None:
    model, inputs, oracle = toy
    alone = _jsons(_evaluate(toy, oracle, method="oracle"))
    _evaluate(toy, -oracle, method="inverted")  # another method first
    after_other = _jsons(_evaluate(toy, oracle, method="oracle"))
    one_by_one = [_jsons(evaluate_maps(model, inputs.subset([i]), oracle[i:i + 1],
                                       method_id="oracle", seed=0,
                                       settings=replace(TOY, pairs_per_batch=1)))[0]
                  for i in range(oracle.shape[0])]
    assert alone == after_other == one_by_one
    # a method's subsets are its own stream: another method id draws other subsets
    a = faithfulness_subsets(0, "p0", "toy", "oracle", 256, TOY)
    b = faithfulness_subsets(0, "p0", "toy", "inverted", 256, TOY)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.array_equal(x, y) for x, y in
               zip(a, faithfulness_subsets(0, "p0", "toy", "oracle", 256, TOY), strict=True))


# --- the metric-validity table on a planted case ------------------------------------------

def _planted() -> tuple[list, dict, dict]:
    rng = numpy_generator(3, "test_metric_validity", "planted")
    methods = [f"m{k}" for k in range(5)]
    records, truth = [], {}
    for k, method in enumerate(methods):
        for i in range(12):
            quality = min(max(k / 4 + rng.normal(0.0, 0.05), 0.0), 1.0)
            record = replace(valid(i, method, falsified=bool(i % 3 == 0)),
                             gt_rank_accuracy=quality, gt_roc_auc=0.5 + quality / 2,
                             is_genuine=i % 2 == 0, margin_rad=float(quality))
            records.append(record)
            truth[(method, record.pair_id)] = quality
    values = {"truth": truth, "backwards": {key: 2.0 - v for key, v in truth.items()},
              "flat": {key: 0.25 for key in truth}}
    return records, values, {"family": methods}


def test_planted_truth_gets_spearman_one_and_backwards_minus_one() -> None:
    records, values, families = _planted()
    rows, empty = metric_validity(records, values, families, seed=0,
                                  orientations={"truth": 1, "backwards": 1, "flat": 1},
                                  n_resamples=200)
    assert empty == ()
    by = {(r.measure, r.stratum, r.quality): r for r in rows}
    for stratum in ("all", "genuine", "impostor"):
        for quality in ("rank_accuracy", "roc_auc"):
            assert by[("truth", stratum, quality)].spearman == pytest.approx(1.0)
            assert by[("backwards", stratum, quality)].spearman == pytest.approx(-1.0)
            flat = by[("flat", stratum, quality)]
            assert flat.spearman is None
            assert "constant" in (flat.undefined_reason or "")
            # margin was planted equal to the quality: the falsification rows read the records
            assert by[("margin", stratum, quality)].spearman == pytest.approx(1.0)
    truth = by[("truth", "all", "rank_accuracy")]
    assert truth.low is not None
    assert truth.high is not None
    assert truth.low <= 1.0 <= truth.high + 1e-12
    assert {r.measure for r in rows} == {*FALSIFICATION_MEASURES, "truth", "backwards", "flat"}
    # a negative orientation flips the sign: "backwards" declared lower-is-better tracks
    rows2, _ = metric_validity(records, {"backwards": values["backwards"]}, families, seed=0,
                               orientations={"backwards": -1}, falsification=(),
                               qualities=("rank_accuracy",), strata=("all",), n_resamples=50)
    assert rows2[0].spearman == pytest.approx(1.0)
    assert rows2[0].orientation == -1
    table = MetricValidityTable(protocol="planted", level=None, seed=0, n_pairs=12,
                                settings={}, families=(("family", tuple(families["family"])),),
                                empty=empty, rows=rows)
    json.dumps(table.to_json(), allow_nan=False)
    assert "truth" in table.format()
    assert "undefined" in table.format()


def test_planted_table_is_deterministic_and_empty_strata_are_named() -> None:
    records, values, families = _planted()
    genuine_only = [r for r in records if r.is_genuine]
    kwargs = {"seed": 4, "orientations": {"truth": 1, "backwards": 1, "flat": 1},
              "n_resamples": 100}
    rows, empty = metric_validity(genuine_only, values, families, **kwargs)  # type: ignore[arg-type]
    assert empty == ("family/impostor",)
    again, _ = metric_validity(genuine_only, values, families, **kwargs)  # type: ignore[arg-type]
    assert [r.to_json() for r in rows] == [r.to_json() for r in again]


def test_missing_metric_value_is_an_error() -> None:
    records, values, families = _planted()
    truth = dict(values["truth"])
    truth.pop(next(iter(truth)))
    with pytest.raises(ValueError, match="no value"):
        metric_validity(records, {"truth": truth}, families, seed=0,
                        orientations={"truth": 1}, n_resamples=10)


def test_collect_metric_values_keys_by_method_and_pair(toy: tuple) -> None:
    values = collect_metric_values(_evaluate(toy, toy[2], method="oracle"))
    assert set(values) == {m.name for m in METRICS}
    assert set(values["deletion_auc"]) == {("oracle", f"p{i}") for i in range(6)}


# --- the command, on a graded protocol, small -------------------------------------------

def test_command_builds_the_maps_and_prints_the_table(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.json"
    code = main(["--level", "0", "--n-pairs", "4", "--n-steps", "4", "--n-resamples", "50",
                 "--methods", "oracle,oracle_blur8,random,saliency,gradient_x_input,grad_cam",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "dose_response_margin (3 maps)" in text
    assert "-deletion_auc" in text
    document = json.loads(out.read_text())
    assert document["n_pairs"] == 4
    assert document["level"] == 0
    measures = {r["measure"] for r in document["rows"]}
    assert measures == {*FALSIFICATION_MEASURES, *(m.name for m in METRICS)}
    assert {r["family"] for r in document["rows"]} == {"dose_response_margin",
                                                       "methods_vs_truth_margin"}
