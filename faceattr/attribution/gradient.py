"""Gradient methods explaining the verification score: Saliency, Gradient x Input, SmoothGrad."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import Saliency as CaptumSaliency
from numpy.typing import NDArray

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionMethod,
    MethodInfo,
    VerificationScoreModule,
    aggregate_channels,
)
from faceattr.params import param
from faceattr.rng import torch_generator

__all__ = ["GradientXInput", "Saliency", "SmoothGrad"]


class Saliency(AttributionMethod):
    """Absolute gradient of the verification score w.r.t. the probe, summed over channels.

    References
    ----------
    K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising
    Image Classification Models and Saliency Maps", ICLR Workshop 2014. Implemented with
    ``captum.attr.Saliency`` (Kokhlikyan et al. 2020).
    """

    info = MethodInfo(name="saliency", reference="Simonyan et al. 2014", aggregation="abs_sum",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``sum_c |d s / d x_a|`` per pixel, (N, H, W)."""
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        probes = batch.probes.detach().clone().requires_grad_(True)
        relevance = CaptumSaliency(score).attribute(probes, abs=True)
        return aggregate_channels(relevance, self.info.aggregation)


class GradientXInput(AttributionMethod):
    """Gradient times input, ``phi = sum_c x_a * d s / d x_a`` (signed, channels summed).

    The input is the probe in [0, 1] (the harness's image space, before the model's own
    preprocessing), so black pixels get zero relevance.

    References
    ----------
    A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje, "Not Just a Black Box: Learning
    Important Features Through Propagating Activation Differences", arXiv:1605.01713, 2016.
    Implemented with ``captum.attr.InputXGradient``.
    """

    info = MethodInfo(name="gradient_x_input", reference="Shrikumar et al. 2016",
                      aggregation="signed_sum", multiplies_by_inputs=True,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``sum_c x_a * d s / d x_a`` per pixel, (N, H, W)."""
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        probes = batch.probes.detach().clone().requires_grad_(True)
        relevance = CaptumInputXGradient(score).attribute(probes)
        return aggregate_channels(relevance, self.info.aggregation)


class SmoothGrad(AttributionMethod):
    """Saliency averaged over noisy copies of the probe.

    ``phi = sum_c (1/n) sum_i |d s / d x (x_a + eps_i)|`` with ``eps_i ~ N(0, sigma^2 I)`` and
    ``sigma = noise_sd`` (the input range is [0, 1], so ``noise_sd`` is the fraction of the range
    Smilkov et al. recommend at 0.1-0.2). This is what ``captum.attr.NoiseTunnel(Saliency,
    nt_type="smoothgrad")`` computes, but the noise is drawn here from the keyed stream
    ``(seed, pair_id, model, method_id, "noise")`` — one stream per pair — instead of torch's
    global RNG, so the same seed gives the same map whatever else ran and however pairs were
    batched (PITFALLS.md #14).

    Parameters
    ----------
    method_id : str
    params : SmoothGrad.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    D. Smilkov, N. Thorat, B. Kim, F. Viegas, M. Wattenberg, "SmoothGrad: removing noise by
    adding noise", arXiv:1706.03825, 2017.
    """

    info = MethodInfo(name="smoothgrad", reference="Smilkov et al. 2017", aggregation="abs_sum",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=True,
                      is_control=False)

    MAX_ROWS: int = 64
    """Largest number of noisy images per forward/backward pass."""

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The noise."""

        n_samples: int = param(8, minimum=1, maximum=1024, unit="samples",
                               doc="noisy copies of each probe")
        noise_sd: float = param(0.15, minimum=0.0, maximum=1.0, unit="[0, 1] image units",
                                doc="standard deviation of the Gaussian input noise")

    params: Params

    def __init__(self, method_id: str, params: SmoothGrad.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the noise-averaged absolute gradient per pixel, (N, H, W)."""
        n_samples, noise_sd = self.params.n_samples, self.params.noise_sd
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        probes = batch.probes.detach()
        noise = torch.stack([
            torch.randn((n_samples, *probes.shape[1:]), dtype=probes.dtype,
                        generator=torch_generator(batch.seed, pair_id, batch.model.name,
                                                  self.method_id, "noise"))
            for pair_id in batch.pair_ids])  # (N, n_samples, C, H, W)
        # several noisy copies of every probe per forward/backward (at most MAX_ROWS rows): a
        # chunk of 4 probes alone is too small a batch for the CPU kernels (issue #11 (c));
        # the pass shape depends only on (N, n_samples), so maps stay reproducible
        n_rows = probes.shape[0]
        per_pass = max(1, min(n_samples, self.MAX_ROWS // max(n_rows, 1)))
        total = torch.zeros_like(probes)
        for start in range(0, n_samples, per_pass):
            count = min(per_pass, n_samples - start)
            noisy = (probes[:, None] + noise_sd * noise[:, start:start + count])
            noisy = noisy.reshape(n_rows * count, *probes.shape[1:]).requires_grad_(True)
            partner = batch.partner_embeddings.repeat_interleave(count, dim=0)
            (grad,) = torch.autograd.grad(score(noisy, partner).sum(), noisy)
            total += grad.abs().reshape(n_rows, count, *probes.shape[1:]).sum(dim=1)
        return aggregate_channels(total / n_samples, self.info.aggregation)
