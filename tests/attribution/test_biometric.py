# The dissertation's Biometric Grad-CAM (issue #21, item 4): the formula as specified, the known
# answer that its scalar identity weighting has no effect after min-max normalisation (Grad-CAM's
# maps, PITFALLS.md #20), which check sees that and which does not, and the spatial variant.
#
# The ground-truth measurement on the synthetic levels 0, 1, 2 lives here, not in
# faceattr.attribution.biometric: it needs faceattr.falsification.quality and faceattr.stats,
# which the attribution package may not import (.importlinter, contract attribution-below).
#   python -m tests.attribution.test_biometric --measure [--n-pairs 40]
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

import faceattr
from faceattr.attribution.base import AttributionBatch, VerificationScoreModule
from faceattr.attribution.biometric import (
    BiometricGradCAM,
    SpatialBiometricGradCAM,
    identity_weight,
    inverse_variance_weights,
)
from faceattr.attribution.cam import GradCAM
from faceattr.attribution.registry import METHODS, build_method
from faceattr.config import ProtocolError
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.records import PairRecord
from faceattr.testing import CheckFailure, check_method, method_checks
from faceattr.testing.tolerances import ATOL_COPY_NORMALISED
from tests.attribution.common import make_batch, model
from tests.helpers import SMALL_PROTOCOL

NEAREST_FULL = BiometricGradCAM.Params(upsampling="nearest")
SCALAR_ONLY = {"inverse_variance": False}
MEASURE_SEED = 20261125  # the graded protocols' seed: the same held-out pairs
LEVEL_MODELS = {0: "synthetic_cnn", 1: "synthetic_cnn_d1", 2: "synthetic_cnn_d2"}


def synthetic_batch(vmodel: VerificationModel, n_pairs: int, *, difficulty: int = 0,
                    seed: int = 5) -> AttributionBatch:
    """Held-out synthetic pairs (genuine first, then impostors) as an attribution batch."""
    source = SyntheticPairSource(world_seed=0, n_pairs=n_pairs, genuine_fraction=0.5,
                                 first_identity=1000, sampling_seed=seed,
                                 difficulty=difficulty)
    pairs = source.pairs()
    probes = [source.load_image(p.image_a) for p in pairs]
    partners = np.stack([source.load_image(p.image_b).image for p in pairs])
    with torch.no_grad():
        embedded = vmodel.embed(torch.from_numpy(partners)).detach()
    masks = [p.identity_mask for p in probes]
    assert all(m is not None for m in masks)
    return AttributionBatch(model=vmodel, probes=torch.from_numpy(np.stack([p.image
                                                                            for p in probes])),
                            partner_embeddings=embedded,
                            pair_ids=tuple(p.pair_id for p in pairs),
                            identity_masks=np.stack([m for m in masks if m is not None]),
                            seed=seed)


def normalised(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-pair min-max normalisation (N, H, W)."""
    low = maps.min(axis=(1, 2), keepdims=True)
    span = np.maximum(np.ptp(maps, axis=(1, 2), keepdims=True), 1e-300)
    out: NDArray[np.float64] = (maps - low) / span
    return out


def spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.ravel(), b.ravel())[0])


def _activation_gradient_score(batch: AttributionBatch, layer: str
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    module = batch.model.named_layers()[layer]
    store: dict[str, torch.Tensor] = {}

    def hook(_mod: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        out.retain_grad()
        store["a"] = out

    handle = module.register_forward_hook(hook)
    try:
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        values = score(batch.probes.clone().requires_grad_(True))
        values.sum().backward()
    finally:
        handle.remove()
    activation = store["a"]
    assert activation.grad is not None
    return activation.detach(), activation.grad.detach(), values.detach()


@pytest.fixture(scope="module")
def pairs_batch() -> AttributionBatch:
    return synthetic_batch(load_synthetic_model(), 6)


# --- the definitions ----------------------------------------------------------------------------

def test_identity_weight_is_the_dissertations_sigmoid() -> None:
    s = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    expected = 1.0 / (1.0 + np.exp(-5.0 * (s.numpy() - 0.5)))
    np.testing.assert_allclose(identity_weight(s).numpy(), expected, rtol=1e-6)
    assert float(identity_weight(torch.tensor(0.5))) == 0.5


def test_inverse_variance_weights_have_mean_one_and_follow_one_over_variance() -> None:
    activation = torch.zeros(2, 3, 4, 4)
    activation[:, 0] = torch.arange(16.0).reshape(4, 4)          # variance 21.25
    activation[:, 1] = 0.5 * torch.arange(16.0).reshape(4, 4)    # variance 21.25 / 4
    activation[1, 2, 0, 0] = 4.0                                  # variance 0.9375 (pair 1)
    eps = 1e-3
    weights = inverse_variance_weights(activation, eps)[..., 0, 0].double()
    variance = activation.var(dim=(2, 3), unbiased=False).double()
    raw = 1.0 / (variance + eps)
    np.testing.assert_allclose(weights.numpy(), (raw / raw.mean(dim=1, keepdim=True)).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(weights.mean(dim=1).numpy(), [1.0, 1.0], rtol=1e-6)
    # channel 1 has a quarter of channel 0's variance: (nearly) four times its weight
    np.testing.assert_allclose(float(weights[0, 1] / weights[0, 0]),
                               (21.25 + eps) / (21.25 / 4 + eps), rtol=1e-5)


def test_biometric_grad_cam_matches_its_formula_at_native_resolution() -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    activation, gradient, scores = _activation_gradient_score(batch, "act4")
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    variance = activation.var(dim=(2, 3), unbiased=False, keepdim=True)
    raw = 1.0 / (variance + 1e-6)
    v = raw / raw.mean(dim=1, keepdim=True)
    w_id = torch.sigmoid(5.0 * (scores - 0.5)).reshape(-1, 1, 1)
    expected = torch.relu(w_id * (v * alpha * activation).sum(dim=1))
    maps = BiometricGradCAM("b", NEAREST_FULL).attribute(batch)
    # nearest upsampling by 8: every 8th pixel is the native value
    np.testing.assert_allclose(maps[:, ::8, ::8], expected.double().numpy(), rtol=1e-4,
                               atol=1e-9)


def test_spatial_variant_weights_each_location_by_its_activation_gradient_cosine() -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    activation, gradient, _ = _activation_gradient_score(batch, "act4")
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    variance = activation.var(dim=(2, 3), unbiased=False, keepdim=True)
    raw = 1.0 / (variance + 1e-6)
    v = raw / raw.mean(dim=1, keepdim=True)
    cosine = torch.nn.functional.cosine_similarity(activation, gradient, dim=1, eps=1e-30)
    w_xy = torch.sigmoid(5.0 * (cosine - 0.5))
    expected = torch.relu(w_xy * (v * alpha * activation).sum(dim=1))
    maps = SpatialBiometricGradCAM("s", SpatialBiometricGradCAM.Params(
        upsampling="nearest")).attribute(batch)
    np.testing.assert_allclose(maps[:, ::8, ::8], expected.double().numpy(), rtol=1e-4,
                               atol=1e-9)


def test_both_are_registered_with_the_layer_and_resolution_recorded() -> None:
    assert METHODS["biometric_grad_cam"] is BiometricGradCAM
    assert METHODS["spatial_biometric_grad_cam"] is SpatialBiometricGradCAM
    assert BiometricGradCAM.Params().inverse_variance  # the registered default is distinct
    details = build_method("s", "spatial_biometric_grad_cam", {}, "test").attribute_with_details(
        make_batch(model("synthetic_cnn"), 1))
    assert (details.layer, details.native_resolution) == ("act4", (8, 8))


@pytest.mark.parametrize(("params", "message"), [
    ({"inverse_variance": "no"}, "inverse_variance"),
    ({"variance_eps": 0.0}, "variance_eps = 0.0 is not allowed"),
    ({"identity_gain": 5.0}, "unknown key 'identity_gain'"),
])
def test_parameters_are_read_strictly(params: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        build_method("b", "biometric_grad_cam", params, "test")


# --- the known answer: the scalar identity weighting has no effect -----------------------------

def test_scalar_only_version_is_grad_cam_after_min_max_normalisation(
        pairs_batch: AttributionBatch) -> None:
    grad_cam = GradCAM("gc").attribute(pairs_batch)
    scalar = build_method("b", "biometric_grad_cam", SCALAR_ONLY, "test").attribute(pairs_batch)
    # the raw maps differ by w_id = sigmoid(5 (s - 0.5)) per pair, impostors' far below 1 ...
    ratio = scalar.max(axis=(1, 2)) / grad_cam.max(axis=(1, 2))
    with torch.no_grad():
        scores = (pairs_batch.model.embed(pairs_batch.probes)
                  * pairs_batch.partner_embeddings).sum(dim=1)
    np.testing.assert_allclose(ratio, identity_weight(scores).double().numpy(), rtol=1e-5)
    assert not np.array_equal(scalar, grad_cam)
    # ... and after min-max normalisation they are one map: float32 rounding only
    assert float(np.abs(normalised(scalar) - normalised(grad_cam)).max()) <= 1e-5
    assert min(spearman(a, b) for a, b in zip(scalar, grad_cam, strict=True)) >= 0.99999


def test_distinct_from_builtins_fails_for_the_scalar_only_version() -> None:
    with pytest.raises(CheckFailure, match=r"distinct_from_builtins failed for method "
                       r"'biometric_grad_cam'.*built-in 'grad_cam'.*normalised maps agree"):
        check_method("biometric_grad_cam", params=SCALAR_ONLY,
                     checks=["distinct_from_builtins"])


_TWO = ('[[methods]]\nmethod = "grad_cam"\n\n[[methods]]\nid = "biometric_scalar_only"\n'
        'method = "biometric_grad_cam"\ninverse_variance = false\n')


def _distinct_run(tmp_path: Path, methods: str) -> faceattr.Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "p.toml"
    path.write_text(SMALL_PROTOCOL.format(seed=5, n_pairs=4, k=2, pairs_per_batch=4,
                                          methods=methods,
                                          claims='[[claims]]\nkind = "distinct_maps"\n'),
                    encoding="utf-8")
    return faceattr.run(path, reports_dir=tmp_path / "reports")


def _distinct_outcome(run: faceattr.Run) -> str:
    assert run.claims is not None
    (claim,) = [c for c in run.claims["claims"] if c["claim_id"] == "guard:distinct_maps"]
    return str(claim["outcome"])


def test_the_scalar_only_version_is_one_map_to_the_test(tmp_path: Path) -> None:
    # every byte differs, but the regions and the ground-truth rank accuracy are Grad-CAM's
    run = _distinct_run(tmp_path, _TWO)
    by_pair: dict[str, dict[str, PairRecord]] = {}
    for record in run.records:
        by_pair.setdefault(record.pair_id, {})[record.method] = record
    assert len(by_pair) == 4
    for rows in by_pair.values():
        gc, bio = rows["grad_cam"], rows["biometric_scalar_only"]
        assert gc.map_sha256 != bio.map_sha256
        assert (gc.n_high_px, gc.n_low_px) == (bio.n_high_px, bio.n_low_px)
        assert gc.gt_rank_accuracy == bio.gt_rank_accuracy
    full = _distinct_run(tmp_path / "full", _TWO.replace("inverse_variance = false\n", ""))
    assert _distinct_outcome(full) == "passed"  # the inverse-variance weighting is distinct


def test_the_distinct_maps_claim_flags_the_scalar_only_version(tmp_path: Path) -> None:
    # The known answer (PITFALLS.md #20): the scalar-only version is Grad-CAM times a positive
    # per-pair factor, one map to the test, so distinct_maps FAILS — its raw bytes all differ,
    # the regions the test perturbs (regions_sha256) do not (issue #21 item 4)
    run = _distinct_run(tmp_path, _TWO)
    assert _distinct_outcome(run) == "failed"
    by_pair: dict[str, dict[str, PairRecord]] = {}
    for record in run.records:
        by_pair.setdefault(record.pair_id, {})[record.method] = record
    same = sum(rows["grad_cam"].regions_sha256 == rows["biometric_scalar_only"].regions_sha256
               for rows in by_pair.values())
    assert same >= 3  # of 4 pairs (near-tied boundary pixels may differ on a few)


# --- the registered defaults are distinct -------------------------------------------------------

@pytest.mark.parametrize("name", ["biometric_grad_cam", "spatial_biometric_grad_cam"])
def test_defaults_pass_distinctness_and_partner_dependence(name: str) -> None:
    checks = dict(method_checks(name))
    for check in ("distinct_from_builtins", "partner_dependence", "batch_invariance",
                  "maps_not_constant"):
        checks[check]()


def test_full_version_is_not_grad_cam_on_synthetic_pairs(pairs_batch: AttributionBatch) -> None:
    grad_cam = GradCAM("gc").attribute(pairs_batch)
    for name in ("biometric_grad_cam", "spatial_biometric_grad_cam"):
        maps = build_method(name, name, {}, "test").attribute(pairs_batch)
        gap = np.abs(normalised(maps) - normalised(grad_cam)).max(axis=(1, 2))
        assert gap.max() > 100 * ATOL_COPY_NORMALISED, (name, gap)
        assert min(spearman(a, b) for a, b in zip(maps, grad_cam, strict=True)) < 0.99


def test_measurement_runs_on_a_few_pairs() -> None:
    rows = measure(n_pairs=4, levels=(0,), n_resamples=100)
    assert {r.method for r in rows} == set(MEASURED)
    for r in rows:
        assert 0.0 <= r.roc_auc[1] <= r.roc_auc[0] <= r.roc_auc[2] <= 1.0


# --- the ground-truth measurement (python -m tests.attribution.test_biometric --measure) -------

MEASURED: dict[str, tuple[str, dict[str, object]]] = {
    "grad_cam": ("grad_cam", {}),
    "biometric_scalar_only": ("biometric_grad_cam", SCALAR_ONLY),
    "biometric_grad_cam": ("biometric_grad_cam", {}),
    "spatial_biometric_grad_cam": ("spatial_biometric_grad_cam", {}),
}


@dataclass(frozen=True)
class QualityRow:
    """Mean ground-truth quality of one method on one level: (estimate, low, high) each."""

    level: int
    method: str
    n_pairs: int
    roc_auc: tuple[float, float, float]
    rank_accuracy: tuple[float, float, float]
    auc_minus_grad_cam: tuple[float, float, float]
    rank_minus_grad_cam: tuple[float, float, float]


def _interval(values: NDArray[np.float64], n_resamples: int, *keys: str | int
              ) -> tuple[float, float, float]:
    from faceattr.rng import numpy_generator
    from faceattr.stats.means import mean_interval

    result = mean_interval(values, method="bootstrap-percentile", alpha=0.05,
                           rng=numpy_generator(MEASURE_SEED, "biometric-measure", *keys),
                           n_resamples=n_resamples)
    low = result.low if result.low is not None else float("nan")
    high = result.high if result.high is not None else float("nan")
    return result.estimate, low, high


def measure(n_pairs: int = 40, levels: tuple[int, ...] = (0, 1, 2),
            n_resamples: int = 2000) -> list[QualityRow]:
    """Mask ROC AUC and rank accuracy of each method on each synthetic level, with 95%
    percentile pair-bootstrap intervals of the means and of the paired differences from
    Grad-CAM: one explicit generator per level, so every method and measure of a level is
    resampled over the same pairs (as truth tracking resamples them)."""
    from faceattr.falsification.quality import map_quality
    from faceattr.models.loading import load_model

    rows: list[QualityRow] = []
    for level in levels:
        batch = synthetic_batch(load_model(LEVEL_MODELS[level]), n_pairs, difficulty=level,
                                seed=MEASURE_SEED)
        assert batch.identity_masks is not None
        quality: dict[str, NDArray[np.float64]] = {}
        for label, (name, params) in MEASURED.items():
            maps = build_method(label, name, params, "measure").attribute(batch)
            measured = [map_quality(m, mask) for m, mask in
                        zip(maps, batch.identity_masks, strict=True)]
            quality[label] = np.array([[q.roc_auc, q.rank_accuracy] for q in measured])
        base = quality["grad_cam"]
        for label, q in quality.items():
            rows.append(QualityRow(
                level=level, method=label, n_pairs=n_pairs,
                roc_auc=_interval(q[:, 0], n_resamples, level),
                rank_accuracy=_interval(q[:, 1], n_resamples, level),
                auc_minus_grad_cam=_interval(q[:, 0] - base[:, 0], n_resamples, level),
                rank_minus_grad_cam=_interval(q[:, 1] - base[:, 1], n_resamples, level)))
    return rows


def _cell(value: tuple[float, float, float]) -> str:
    return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.attribution.test_biometric")
    parser.add_argument("--measure", action="store_true", required=True)
    parser.add_argument("--n-pairs", type=int, default=40)
    parser.add_argument("--n-resamples", type=int, default=2000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| level | method | mask ROC AUC [95% CI] | rank accuracy [95% CI] "
          "| AUC - Grad-CAM [95% CI] | rank acc. - Grad-CAM [95% CI] |")
    print("|---|---|---|---|---|---|")
    for r in measure(args.n_pairs, n_resamples=args.n_resamples):
        print(f"| {r.level} | {r.method} | {_cell(r.roc_auc)} | {_cell(r.rank_accuracy)} | "
              f"{_cell(r.auc_minus_grad_cam)} | {_cell(r.rank_minus_grad_cam)} |")
    print(f"n = {args.n_pairs} pairs per level (half genuine), percentile pair bootstrap, "
          f"{args.n_resamples} resamples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
