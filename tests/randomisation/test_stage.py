from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from faceattr.attribution import build_method
from faceattr.randomisation.stage import (
    RANDOMISATION_FILE,
    RandomisationResult,
    StepSimilarity,
    load_randomisation,
    run_randomisation,
    write_randomisation,
)
from tests.randomisation.common import N_PAIRS, hand_result

TOP_DOWN = ["embedding", "conv4", "conv3", "conv2", "conv1"]


def test_curves_are_top_down_and_independent(synthetic):
    result = synthetic["result"]
    assert result.layers == ("conv1", "conv2", "conv3", "conv4", "embedding")
    assert result.n_pairs == N_PAIRS
    curves = result.method("saliency")
    assert [s.layer for s in curves.cascading] == TOP_DOWN
    assert [s.n_layers_randomised for s in curves.cascading] == [1, 2, 3, 4, 5]
    assert curves.cascading[1].layers_randomised == ("embedding", "conv4")
    assert [s.layers_randomised for s in curves.independent] == [(n,) for n in TOP_DOWN]
    # pairs are spread over the batch, genuine (first half) and impostor alike
    batch_ids = synthetic["data"].batch.pair_ids
    assert result.pair_ids == (batch_ids[0], batch_ids[2], batch_ids[4], batch_ids[6])


def test_saliency_maps_lose_their_similarity_after_the_full_cascade(synthetic):
    curves = synthetic["result"].method("saliency")
    full = curves.cascading[-1]
    # the original map has similarity 1 with itself; the fully randomised model's maps are
    # far from it by every metric
    assert full.similarity("spearman_abs").mean < 0.5, full
    assert full.similarity("ssim").mean < 0.3, full
    assert full.similarity("topk").mean < 0.4, full
    assert not any(curves.original_constant)


@pytest.mark.parametrize("method_id", ["random", "edge"])
def test_model_blind_maps_stay_identical(method_id, synthetic):
    curves = synthetic["result"].method(method_id)
    for step in (*curves.cascading, *curves.independent):
        for entry in step.similarities:
            assert entry.mean == pytest.approx(1.0, rel=1e-12), (method_id, step.layer, entry)


def test_a_failing_method_is_recorded_not_dropped(synthetic):
    curves = synthetic["result"].method("broken")
    assert curves.error == "RuntimeError: boom (original model)"
    assert curves.cascading == ()
    assert curves.independent == ()


def test_the_callers_model_and_the_global_rng_are_untouched(synthetic):
    assert torch.equal(synthetic["rng_state"], synthetic["rng_after"])
    for key, value in synthetic["model"].network.state_dict().items():
        torch.testing.assert_close(value, synthetic["before"][key], rtol=0.0, atol=0.0, msg=key)


def test_rerun_is_identical_and_layers_can_be_restricted(synthetic):
    model, data = synthetic["model"], synthetic["data"]
    saliency = build_method("saliency", "saliency", {}, "test")
    again = run_randomisation(model, [saliency], data.batch, partner_images=data.partner_images,
                              seed=0, n_pairs=N_PAIRS, layers=["embedding", "conv4"])
    assert again.layers == ("conv4", "embedding")
    assert [s.layer for s in again.method("saliency").cascading] == ["embedding", "conv4"]
    # the same keyed layer weights give the same similarities as in the full run
    full = synthetic["result"].method("saliency")
    assert again.method("saliency").cascading == full.cascading[:2]
    assert again.method("saliency").independent == full.independent[:2]


def test_json_round_trip_through_the_run_folder(synthetic, tmp_path):
    result = synthetic["result"]
    assert RandomisationResult.from_json(result.to_json()) == result
    assert load_randomisation(tmp_path) is None
    path = write_randomisation(tmp_path, result)
    assert path == tmp_path / RANDOMISATION_FILE
    assert load_randomisation(tmp_path) == result


def test_load_rejects_corrupt_and_inconsistent_files(tmp_path):
    (tmp_path / RANDOMISATION_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_randomisation(tmp_path)
    document = hand_result("saliency", [[0.5, 0.4]] * 3, [[0.5, 0.4]] * 3).to_json()
    document["methods"][0]["cascading"].reverse()
    (tmp_path / RANDOMISATION_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match="not the top-down cascade"):
        load_randomisation(tmp_path)
    document = hand_result("saliency", [[0.5, 0.4]] * 3, [[0.5, 0.4]] * 3).to_json()
    del document["methods"][0]["error"]
    (tmp_path / RANDOMISATION_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=r"keys differ \(missing \['error'\]"):
        load_randomisation(tmp_path)


def test_step_similarity_validates_its_numbers():
    with pytest.raises(ValueError, match="does not match"):
        StepSimilarity(metric="ssim", per_pair=(0.2, 0.4), mean=0.5)
    with pytest.raises(ValueError, match=r"not a number in \[0.0, 1.0\]"):
        StepSimilarity.of("topk", [0.2, -0.1])
    with pytest.raises(ValueError, match="unknown metric"):
        StepSimilarity.of("pearson", [0.2])  # type: ignore[arg-type]
    result = hand_result("saliency", [[0.5, 0.4]] * 3, [[0.5, 0.4]] * 3)
    with pytest.raises(ValueError, match="unique and sorted"):
        dataclasses.replace(result, methods=result.methods * 2)


def test_inputs_are_checked(synthetic):
    model, data = synthetic["model"], synthetic["data"]
    saliency = [build_method("saliency", "saliency", {}, "test")]
    with pytest.raises(ValueError, match=r"n_pairs must be in \[1, 8\]"):
        run_randomisation(model, saliency, data.batch, partner_images=data.partner_images,
                          seed=0, n_pairs=9)
    with pytest.raises(ValueError, match="do not match the batch's partner embeddings"):
        run_randomisation(model, saliency, data.batch,
                          partner_images=data.partner_images.flip(0), seed=0, n_pairs=2)
    with pytest.raises(ValueError, match="no weight layer 'bn4'"):
        run_randomisation(model, saliency, data.batch, partner_images=data.partner_images,
                          seed=0, n_pairs=2, layers=["bn4"])
    with pytest.raises(ValueError, match="method ids repeat"):
        run_randomisation(model, saliency * 2, data.batch, partner_images=data.partner_images,
                          seed=0, n_pairs=2)
