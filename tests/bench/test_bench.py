# Smoke tests of the benchmark harness at tiny sizes (no timing assertions: timings are noisy).
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.bench import BenchConfig, ModelSizes, markdown_table, run_benchmarks
from faceattr.bench.__main__ import main
from faceattr.bench.common import interleaved, make_workload
from faceattr.bench.engine import construct_counterfactuals
from faceattr.bench.memory import default_protocols, peak_rss_of, reduced_protocol_text
from faceattr.bench.reference import reference_drifts
from faceattr.bench.scaling import linear_fit
from faceattr.falsification import falsify_maps
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.rng import torch_generator
from tests.helpers import tiny_model

TINY = ModelSizes(engine_pairs=2, engine_k=2, engine_chunk=8, engine_repeats=1, attr_pairs=4,
                  ig_steps=2, sg_samples=2, ig_internal_batch=8, attr_repeats=1,
                  scaling_pairs=(1, 2), scaling_k=(2, 3), scaling_chunk=4, scaling_repeats=1)
TINY_CONFIG = BenchConfig(mode="tiny", small=TINY, large=TINY, memory=False,
                          memory_quick=True)


def _finite_numbers(obj: object) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [v for value in obj.values() for v in _finite_numbers(value)]
    if isinstance(obj, list):
        return [v for value in obj for v in _finite_numbers(value)]
    return []


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    summary = run_benchmarks(["synthetic_cnn"], out, TINY_CONFIG)
    return out, summary


def test_suite_writes_every_report_with_its_keys(suite: tuple[Path, dict]) -> None:
    out, _ = suite
    assert sorted(p.name for p in out.glob("*.json")) == [
        "attribution.json", "engine.json", "memory.json", "scaling.json", "summary.json"]
    engine = json.loads((out / "engine.json").read_text())
    assert engine["meta"]["machine"]["torch_threads"] == 1
    row = engine["results"]["synthetic_cnn"]
    assert {"engine_vs_raw_forward", "speedup_vs_reference", "construction_share_of_engine",
            "engine_images_per_s", "raw_forward_images_per_s", "times"} <= set(row)
    attribution = json.loads((out / "attribution.json").read_text())["results"]["synthetic_cnn"]
    assert {"ig_vs_raw_fwd_bwd", "smoothgrad_vs_raw_fwd_bwd"} <= set(attribution)
    scaling = json.loads((out / "scaling.json").read_text())["results"]["synthetic_cnn"]
    assert len(scaling["points"]) == 4
    assert {"slope", "intercept", "r2"} <= set(scaling["fit_time_vs_images"])
    assert json.loads((out / "memory.json").read_text())["result"] == {"skipped": "disabled"}


def test_summary_ratios_are_finite_and_positive(suite: tuple[Path, dict]) -> None:
    out, summary = suite
    (row,) = summary["rows"]
    for key in ("a_engine_vs_raw_forward", "b_speedup_vs_reference", "c_ig_vs_raw_fwd_bwd",
                "c_smoothgrad_vs_raw_fwd_bwd"):
        assert math.isfinite(row[key]), key
        assert row[key] > 0, key
    on_disk = json.loads((out / "summary.json").read_text())  # strict JSON: no NaN
    assert all(math.isfinite(v) for v in _finite_numbers(on_disk))
    assert "| synthetic_cnn | 64 |" in markdown_table(summary)


@pytest.mark.parametrize("k", [2, 5])
def test_reference_loop_and_engine_compute_the_same_drifts(k: int) -> None:
    model = load_synthetic_model()
    workload = make_workload(model, n_pairs=3, k=k, forward_chunk=8, tag="test")
    records = falsify_maps(model, workload.inputs, workload.maps, method_id=workload.method_id,
                           seed=workload.seed, settings=workload.settings)
    reference = reference_drifts(workload)
    assert [r.pair_id for r in reference] == [r.pair_id for r in records]
    for ref, record in zip(reference, records, strict=True):
        assert record.status == "valid"
        assert ref.drift_high_rad is not None
        assert ref.drift_low_rad is not None
        assert ref.score_drop_high is not None
        assert ref.score_drop_low is not None
        # batch-of-one vs batch-of-eight float32 rounding only
        np.testing.assert_allclose(ref.drift_high_rad, record.drift_high_rad, atol=2e-4)
        np.testing.assert_allclose(ref.drift_low_rad, record.drift_low_rad, atol=2e-4)
        np.testing.assert_allclose(ref.score_drop_high, record.score_drop_high, atol=2e-5)
        np.testing.assert_allclose(ref.score_drop_low, record.score_drop_low, atol=2e-5)
        assert len(ref.drift_high_rad) == k


def test_construction_builds_the_engines_counterfactual_count() -> None:
    workload = make_workload(tiny_model(), n_pairs=2, k=3, forward_chunk=4, tag="test")
    images = construct_counterfactuals(workload)
    assert sum(block.shape[0] for block in images) == workload.n_counterfactuals == 12


def test_interleaved_runs_every_case_repeats_times_after_warmup() -> None:
    calls: list[str] = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                        repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert all(len(t.wall_s) == 3 for t in times.values())


def test_linear_fit_recovers_a_line() -> None:
    fit = linear_fit([1, 2, 3, 4], [3.0, 5.0, 7.0, 9.0])
    assert fit["slope"] == pytest.approx(2.0)
    assert fit["intercept"] == pytest.approx(1.0)
    assert fit["r2"] == pytest.approx(1.0)


def test_peak_rss_sees_a_childs_allocation() -> None:
    result = peak_rss_of([sys.executable, "-c", "b = bytearray(200_000_000); b[::4096] = b'x' * "
                          "len(b[::4096])"])
    assert result["returncode"] == 0
    assert result["peak_rss_bytes"] >= 200_000_000


def test_reduced_protocol_keeps_everything_but_the_sizes() -> None:
    shipped = (Path(__file__).parents[2] / "validation/protocols/synthetic.toml").read_text()
    reduced = reduced_protocol_text(shipped, n_pairs=10, k_per_region=4)
    assert "n_pairs = 10" in reduced
    assert "k_per_region = 4" in reduced
    assert reduced.count("n_pairs =") == shipped.count("n_pairs =")  # other tables untouched
    assert reduced.count("[[claims]]") == shipped.count("[[claims]]")
    with pytest.raises(ValueError, match="n_pairs"):
        reduced_protocol_text("[data]\n", n_pairs=1, k_per_region=1)


def test_default_protocols_are_read_from_the_validation_conftest() -> None:
    protocols = default_protocols(Path(__file__).parents[2])
    assert protocols
    assert all(p.is_file() for p in protocols)


def test_suite_records_the_device_it_ran_on(suite: tuple[Path, dict]) -> None:
    _, summary = suite
    assert summary["meta"]["device"] == {"name": "cpu"}


def test_unavailable_device_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", f"cuda:{torch.cuda.device_count() + 7}", "--no-memory"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sees no such device" in message


def test_embed_runs_on_the_networks_device_and_returns_on_the_inputs() -> None:
    model = tiny_model()
    images = torch.rand(2, 3, 16, 16, generator=torch_generator(0, "embed_device"))
    assert model.device == torch.device("cpu")
    out = model.embed(images)
    assert out.device == images.device
    assert torch.equal(out, model.embed(images.clone()))
