# The batched falsification engine and the Saliency target, on a tiny CPU model.
from __future__ import annotations

import numpy as np
import pytest
import torch

from faceattr.attribution import AttributionBatch, AttributionMethod, MethodInfo, build_method
from faceattr.experiments.method_records import method_records as _method_records
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.models.base import embed_batched
from faceattr.protocol import load_protocol
from faceattr.rng import numpy_generator
from tests.helpers import pair, tiny_model

SETTINGS = FalsificationSettings(
    regions="quantile", q_frac=0.1, theta_high=1.0, theta_low=0.0, area_ratio_bounds=(1.0, 1.0),
    k_per_region=4, fill="mean", blur_sigma_px=0.0, perturbation_sigma=0.02, verdict="simple",
    distance="geodesic", tau_high=0.5, tau_low=0.3, epsilon=0.1, alpha=0.05, forward_chunk=16)


def _inputs(n: int) -> PairInputs:
    model = tiny_model()
    rng = numpy_generator(0, "engine-test")
    probes = rng.random((n, 3, 16, 16)).astype(np.float32)
    partners = rng.random((n, 3, 16, 16)).astype(np.float32)
    emb = embed_batched(model, torch.from_numpy(np.concatenate([probes, partners])),
                        chunk_size=16).numpy()
    return PairInputs(pairs=[pair(i) for i in range(n)], probes=probes,
                      probe_embeddings=emb[:n], partner_embeddings=emb[n:])


def _maps(n: int) -> np.ndarray:
    return numpy_generator(1, "maps").random((n, 16, 16))


def test_records_do_not_depend_on_how_pairs_are_batched() -> None:
    model, inputs, maps = tiny_model(), _inputs(6), _maps(6)
    together = falsify_maps(model, inputs, maps, method_id="m", seed=3, settings=SETTINGS)
    alone = []
    for i in range(6):
        single = PairInputs(pairs=[inputs.pairs[i]], probes=inputs.probes[i:i + 1],
                            probe_embeddings=inputs.probe_embeddings[i:i + 1],
                            partner_embeddings=inputs.partner_embeddings[i:i + 1])
        alone += falsify_maps(model, single, maps[i:i + 1], method_id="m", seed=3,
                              settings=SETTINGS)
    assert together == alone


def test_embed_batched_is_row_independent() -> None:
    model = tiny_model()
    images = torch.from_numpy(numpy_generator(2, "x").random((20, 3, 16, 16)).astype(np.float32))
    full = embed_batched(model, images, chunk_size=8)
    assert torch.equal(full[5:6], embed_batched(model, images[5:6], chunk_size=8))


def test_nan_map_gives_an_error_status_not_a_dropped_pair() -> None:
    model, inputs, maps = tiny_model(), _inputs(3), _maps(3)
    maps[1, 0, 0] = np.nan
    records = falsify_maps(model, inputs, maps, method_id="m", seed=0, settings=SETTINGS)
    assert [r.status for r in records] == ["valid", "error:NonFiniteMap", "valid"]
    assert records[1].falsified


class _Broken(AttributionMethod):
    info = MethodInfo(name="broken", reference="-", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    def attribute(self, batch: AttributionBatch) -> np.ndarray:
        raise AttributeError("module has no attribute 'explain'")  # PITFALLS.md #6


def test_a_method_that_raises_gives_error_records_for_every_pair() -> None:
    from pathlib import Path

    protocol = load_protocol(Path(__file__).parents[1] / "validation/protocols/synthetic.toml")
    records = _method_records(_Broken("broken"), tiny_model(), _inputs(3), protocol,
                              SETTINGS, [])
    assert [r.status for r in records] == ["error:AttributeError"] * 3
    assert all(r.falsified and "explain" in (r.status_reason or "") for r in records)


def _saliency_batch(partner_index: int = 0) -> AttributionBatch:
    inputs = _inputs(2)
    partners = torch.from_numpy(inputs.partner_embeddings[[partner_index, partner_index]])
    return AttributionBatch(model=tiny_model(), probes=torch.from_numpy(inputs.probes),
                            partner_embeddings=partners, pair_ids=("p0", "p1"),
                            identity_masks=None, seed=0)


def test_saliency_is_the_gradient_of_the_verification_score() -> None:
    batch = _saliency_batch()
    saliency = build_method("saliency", "saliency", {}, "test").attribute(batch)
    probes = batch.probes.clone().requires_grad_(True)
    score = (batch.model.embed(probes) * batch.partner_embeddings).sum()
    (grad,) = torch.autograd.grad(score, probes)
    np.testing.assert_allclose(saliency, grad.abs().sum(dim=1).double().numpy(), rtol=1e-6)
    assert saliency.shape == (2, 16, 16)
    assert np.ptp(saliency[0]) > 0


def test_saliency_depends_on_the_partner() -> None:
    # the target is s(x_a, x_b), not a function of x_a alone (PITFALLS.md #5)
    method = build_method("saliency", "saliency", {}, "test")
    assert not np.allclose(method.attribute(_saliency_batch(0)),
                           method.attribute(_saliency_batch(1)))


def test_random_map_is_keyed_by_pair_not_by_position() -> None:
    method = build_method("random", "random", {}, "test")
    batch = _saliency_batch()
    maps = method.attribute(batch)
    swapped = AttributionBatch(model=batch.model, probes=batch.probes.flip(0),
                               partner_embeddings=batch.partner_embeddings,
                               pair_ids=("p1", "p0"), identity_masks=None, seed=0)
    np.testing.assert_array_equal(method.attribute(swapped)[::-1], maps)


def test_oracle_without_ground_truth_is_an_error() -> None:
    with pytest.raises(ValueError, match="provides no identity masks"):
        build_method("oracle", "oracle", {}, "test").attribute(_saliency_batch())




def test_a_pair_whose_target_fails_sanity_becomes_error_target() -> None:
    from pathlib import Path

    from faceattr.attribution.target import TargetSanity

    protocol = load_protocol(Path(__file__).parents[1] / "validation/protocols/synthetic.toml")
    inputs = _inputs(2)
    sanity = [TargetSanity(score=0.5, grad_norm=0.3, max_change=0.1, passed=True, reason=None),
              TargetSanity(score=1.0, grad_norm=1e-11, max_change=0.0, passed=False,
                           reason="gradient norm 1e-11 < 1e-06")]
    method = build_method("saliency", "saliency", {}, "test")
    records = _method_records(method, tiny_model(), inputs, protocol, SETTINGS, sanity)
    assert [r.status for r in records] == ["valid", "error:target"]
    assert records[1].status_reason == "gradient norm 1e-11 < 1e-06"
    assert records[1].falsified
    assert records[0].target_grad_norm == 0.3
    # controls do not explain the score: target sanity does not apply to them
    control = build_method("random", "random", {}, "test")
    assert [r.status for r in _method_records(control, tiny_model(), inputs, protocol,
                                              SETTINGS, sanity)] == ["valid", "valid"]
