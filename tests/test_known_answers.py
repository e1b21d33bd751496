# Known answers of the falsification test on the synthetic world with the committed model.
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from faceattr.attribution import AttributionBatch, build_method
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.models.base import embed_batched
from faceattr.models.synthetic_cnn import load_synthetic_model

QUANTILE = FalsificationSettings(
    regions="quantile", q_frac=0.1, theta_high=1.0, theta_low=0.0, area_ratio_bounds=(0.5, 2.0),
    k_per_region=8, fill="mean", blur_sigma_px=0.0, perturbation_sigma=0.02, verdict="theorem",
    distance="geodesic", tau_high=0.7, tau_low=0.45, epsilon=0.1, alpha=0.05, forward_chunk=64)
THRESHOLD = replace(QUANTILE, regions="threshold", theta_high=0.5, theta_low=0.5)


@pytest.fixture(scope="module")
def world() -> tuple[PairInputs, np.ndarray, object]:
    model = load_synthetic_model()
    source = SyntheticPairSource(world_seed=0, n_pairs=10, genuine_fraction=0.5,
                                 first_identity=1000, sampling_seed=3)
    pairs = source.pairs()
    probes = [source.load_image(p.image_a) for p in pairs]
    partners = np.stack([source.load_image(p.image_b).image for p in pairs])
    images = torch.from_numpy(np.concatenate([np.stack([p.image for p in probes]), partners]))
    emb = embed_batched(model, images, chunk_size=64).numpy()
    inputs = PairInputs(pairs=pairs, probes=np.stack([p.image for p in probes]),
                        probe_embeddings=emb[:10], partner_embeddings=emb[10:])
    masks = np.stack([p.identity_mask for p in probes])
    batch = AttributionBatch(model=model, probes=torch.from_numpy(inputs.probes),
                             partner_embeddings=torch.from_numpy(inputs.partner_embeddings),
                             pair_ids=tuple(p.pair_id for p in pairs), identity_masks=masks,
                             seed=0)
    oracle = build_method("oracle", "oracle", {}, "test").attribute(batch)
    return inputs, oracle, model


def _falsified(world: tuple, maps: np.ndarray, settings: FalsificationSettings) -> list[bool]:
    inputs, _, model = world
    records = falsify_maps(model, inputs, maps, method_id="m", seed=1, settings=settings)
    assert all(r.status == "valid" for r in records)
    return [r.falsified for r in records]


def test_ground_truth_map_survives_theorem_3_5(world: tuple) -> None:
    assert _falsified(world, world[1], QUANTILE) == [False] * 10


def test_inverted_ground_truth_is_falsified(world: tuple) -> None:
    assert _falsified(world, -world[1], QUANTILE) == [True] * 10


def test_area_confound_sparse_map_is_falsified_by_construction_in_threshold_mode(
        world: tuple) -> None:
    # A sparse map: the ground truth plus a spike on its 20 most relevant pixels (0.5% of the
    # image). Its ranking is the ground truth's, so quantile mode judges it on equal areas and
    # it survives; in threshold mode S_high is 20 px and S_low 99.5% of the image, so masking
    # S_low moves the embedding far more and the map is falsified — by area, not by merit.
    inputs, oracle, model = world
    sparse = oracle.copy()
    for row in sparse:
        top = np.argsort(row, axis=None, kind="stable")[-20:]
        row.flat[top] += 100.0
    assert _falsified(world, sparse, QUANTILE) == [False] * 10
    records = falsify_maps(model, inputs, sparse, method_id="m", seed=1, settings=THRESHOLD)
    assert all(r.falsified for r in records)
    assert all(r.n_high_px == 20 and r.n_low_px == 4096 - 20 for r in records)
    assert all(r.area_confound for r in records)
