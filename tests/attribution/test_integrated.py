# Integrated Gradients and Geodesic IG: exact answers on an analytic model, completeness,
# equal-arc steps, and residuals that shrink with n_steps on the synthetic CNN.
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.attribution import AttributionBatch
from faceattr.attribution.baselines import make_baseline
from faceattr.attribution.integrated import (
    GeodesicIntegratedGradients,
    IntegratedGradients,
    equal_arc_alphas,
)
from faceattr.models.base import VerificationModel, verification_score
from tests.attribution.common import make_batch, model

IG = IntegratedGradients.Params
GEO = GeodesicIntegratedGradients.Params

SIDE = 4
THETA = -0.5  # partner angle: phi = a.x - THETA stays in (0, pi) on the whole path


class _CircleEmbedding(nn.Module):
    # f(x) = (cos(a.x), sin(a.x)): unit norm everywhere, so s = cos(a.x - theta) in closed form
    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a
        assert isinstance(a, torch.Tensor)
        angle = x.flatten(1) @ a
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def _analytic_batch() -> tuple[AttributionBatch, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)  # explicit local generator, not the global RNG
    a = torch.rand(3 * SIDE * SIDE, generator=gen, dtype=torch.float64) * 0.04
    vmodel = VerificationModel(name="circle", network=_CircleEmbedding(a), input_size_px=SIDE,
                               pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)
    probes = torch.rand(2, 3, SIDE, SIDE, generator=gen, dtype=torch.float64)
    partner = torch.tensor([[np.cos(THETA), np.sin(THETA)]] * 2, dtype=torch.float64)
    batch = AttributionBatch(model=vmodel, probes=probes, partner_embeddings=partner,
                             pair_ids=("p0", "p1"), identity_masks=None, seed=0)
    return batch, a


def test_ig_matches_the_closed_form_in_float64() -> None:
    batch, a = _analytic_batch()
    x = batch.probes.flatten(1)
    # phi(t) = a.(t x) - theta; int_0^1 -sin(phi(t)) dt = (cos(phi1) - cos(phi0)) / (a.x)
    phi0, phi1 = torch.full((2,), -THETA, dtype=torch.float64), x @ a - THETA
    factor = (torch.cos(phi1) - torch.cos(phi0)) / (x @ a)
    expected = (x * a * factor[:, None]).view(2, 3, SIDE, SIDE).sum(dim=1).numpy()
    details = IntegratedGradients("ig", IG(n_steps=16)).attribute_with_details(batch)
    # Gauss-Legendre with 16 nodes on an entire integrand: error far below float64 rounding
    # of the ~1e-3 sized values times the 48 summed terms
    np.testing.assert_allclose(details.maps, expected, rtol=1e-10, atol=1e-15)
    assert details.convergence_delta is not None
    # residual of an exact integral: only rounding (measured ~1e-11 from captum's float64
    # quadrature weights and score evaluations); 1e-10 is still 8 orders below float32 IG's
    assert np.abs(details.convergence_delta).max() < 1e-10


def test_geodesic_ig_is_exact_when_the_angle_is_linear_along_the_path() -> None:
    # F = 1 - arccos(cos(phi))/pi = 1 - phi/pi is linear in t here, so any node placement
    # integrates it exactly: phi_i = -(x_i a_i) / pi, and sum(phi) = F(x) - F(0)
    batch, a = _analytic_batch()
    x = batch.probes.flatten(1)
    expected = (-(x * a) / np.pi).view(2, 3, SIDE, SIDE).sum(dim=1).numpy()
    method = GeodesicIntegratedGradients("g", GEO(n_steps=3, n_pilot=8))
    details = method.attribute_with_details(batch)
    np.testing.assert_allclose(details.maps, expected, rtol=1e-9, atol=1e-15)
    assert details.convergence_delta is not None
    assert np.abs(details.convergence_delta).max() < 1e-12


def test_equal_arc_alphas_are_uniform_for_constant_angular_speed() -> None:
    t = torch.linspace(0, 1, 65, dtype=torch.float64)
    pilot = torch.stack([torch.cos(2 * t), torch.sin(2 * t)], dim=1)
    np.testing.assert_allclose(equal_arc_alphas(pilot, 8), np.linspace(0, 1, 9), atol=1e-12)


def test_equal_arc_alphas_follow_the_arc_length() -> None:
    # angle t^2: arc L(t) = t^2, so equal-arc nodes are t_i = sqrt(i/n) (up to the blend and the
    # pilot's piecewise-linear resolution: with 1025 pilot points the chord error is < 1e-3)
    t = torch.linspace(0, 1, 1025, dtype=torch.float64)
    pilot = torch.stack([torch.cos(t**2), torch.sin(t**2)], dim=1)
    alphas = equal_arc_alphas(pilot, 8)
    np.testing.assert_allclose(alphas, np.sqrt(np.linspace(0, 1, 9)), atol=2e-3)
    assert alphas[0] == 0.0
    assert alphas[-1] == 1.0


def test_equal_arc_alphas_are_uniform_when_the_embedding_never_moves() -> None:
    pilot = torch.tensor([[1.0, 0.0]] * 17, dtype=torch.float64)
    np.testing.assert_allclose(equal_arc_alphas(pilot, 4), np.linspace(0, 1, 5), atol=1e-12)


@pytest.mark.parametrize("cls", [IntegratedGradients, GeodesicIntegratedGradients])
def test_completeness_residual_shrinks_with_n_steps(cls: type[IntegratedGradients]) -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    coarse = cls("m", cls.Params(n_steps=4)).attribute_with_details(batch).convergence_delta
    fine = cls("m", cls.Params(n_steps=48)).attribute_with_details(batch).convergence_delta
    assert coarse is not None
    assert fine is not None
    # quadrature error falls at least ~1/n for these piecewise-smooth (ReLU) integrands; a 12x
    # step increase must cut the mean |residual| by well over 3x
    assert np.abs(fine).mean() < np.abs(coarse).mean() / 3, (coarse, fine)


def test_ig_residual_is_sum_of_map_minus_score_difference() -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    details = IntegratedGradients("ig", IG(n_steps=8)).attribute_with_details(batch)
    with torch.no_grad():
        s_x = verification_score(batch.model.embed(batch.probes), batch.partner_embeddings)
        s_b = verification_score(batch.model.embed(torch.zeros_like(batch.probes)),
                                 batch.partner_embeddings)
    expected = details.maps.sum(axis=(1, 2)) - (s_x - s_b).double().numpy()
    assert details.convergence_delta is not None
    # float32 sums of 12288 terms of size ~1e-3: rounding ~1e-6
    np.testing.assert_allclose(details.convergence_delta, expected, atol=1e-5)


def test_geodesic_ig_differs_from_ig() -> None:
    batch = make_batch(model("synthetic_cnn"), 1)
    ig = IntegratedGradients("ig", IG(n_steps=8)).attribute(batch)
    geo = GeodesicIntegratedGradients("g", GEO(n_steps=8)).attribute(batch)
    ig_n, geo_n = ig / np.abs(ig).max(), geo / np.abs(geo).max()
    assert np.abs(ig_n - geo_n).max() > 1e-2


@pytest.mark.parametrize("kind", ["black", "blur", "mean"])
def test_baselines_are_per_probe(kind: str) -> None:
    batch = make_batch(model("tiny"), 3)
    together = make_baseline(batch.probes, kind, blur_sigma_px=2.0)  # type: ignore[arg-type]
    alone = make_baseline(batch.probes[1:2], kind, blur_sigma_px=2.0)  # type: ignore[arg-type]
    assert together.shape == batch.probes.shape
    torch.testing.assert_close(together[1:2], alone, rtol=0, atol=0)


def test_blur_baseline_keeps_the_mean_and_lowers_the_variance() -> None:
    probes = make_batch(model("synthetic_cnn"), 1).probes
    blurred = make_baseline(probes, "blur", blur_sigma_px=4.0)
    assert abs(float(blurred.mean() - probes.mean())) < 1e-2
    assert float(blurred.std()) < 0.5 * float(probes.std())
