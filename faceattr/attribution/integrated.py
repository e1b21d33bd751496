"""Path methods with a completeness residual: Integrated Gradients and Geodesic IG."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from numpy.typing import NDArray
from torch import nn

from faceattr.attribution.base import (
    AngularSimilarityModule,
    AttributionBatch,
    AttributionDetails,
    AttributionMethod,
    BatchParams,
    MethodInfo,
    VerificationScoreModule,
    aggregate_channels,
)
from faceattr.attribution.baselines import BaselineParams
from faceattr.params import param

__all__ = ["GeodesicIntegratedGradients", "IntegratedGradients", "PathParams",
           "equal_arc_alphas"]


@dataclass(frozen=True, kw_only=True)
class PathParams(BaselineParams, BatchParams):
    """Parameters of a path method from a baseline to the probe."""

    n_steps: int = param(32, minimum=1, maximum=4096, unit="steps",
                         doc="gradient evaluations along the path per pair")


class IntegratedGradients(AttributionMethod):
    """Integrated Gradients of the verification score along the straight path from a baseline.

    ``phi_i = (x_i - b_i) * int_0^1 d s / d x_i (b + t (x - b)) dt``, approximated by captum's
    Gauss-Legendre quadrature with ``n_steps`` nodes; channels are summed with sign. The
    completeness residual ``sum(phi) - (s(x) - s(b))`` is returned per pair by
    :meth:`attribute_with_details` (captum's ``return_convergence_delta``).

    ``n_steps`` is the number of quadrature nodes; ``internal_batch_size`` has captum's
    semantics (it chunks the steps, never changes the maths) and pairs are processed in groups
    no larger than it. The baseline is :func:`faceattr.attribution.baselines.make_baseline`.

    Parameters
    ----------
    method_id : str
    params : IntegratedGradients.Params, optional
        See ``Params`` (:class:`PathParams`; defaults when omitted).

    References
    ----------
    M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.
    Implemented with ``captum.attr.IntegratedGradients``.
    """

    info = MethodInfo(name="integrated_gradients", reference="Sundararajan et al. 2017",
                      aggregation="signed_sum", multiplies_by_inputs=True,
                      has_convergence_delta=True, stochastic=False, is_control=False)

    Params = PathParams
    params: PathParams

    def __init__(self, method_id: str, params: PathParams | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the IG maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps and the signed completeness residual per pair."""
        probes = batch.probes.detach()
        baselines = self.params.make_baselines(probes)
        # captum warns and ignores internal_batch_size when it is below the number of examples;
        # feeding it at most internal_batch_size pairs at a time keeps the bound honest.
        rows = min(probes.shape[0], self.params.internal_batch_size)
        maps: list[NDArray[np.float64]] = []
        deltas: list[torch.Tensor] = []
        for start in range(0, probes.shape[0], rows):
            part = slice(start, start + rows)
            score = VerificationScoreModule(batch.model, batch.partner_embeddings[part])
            ig = CaptumIntegratedGradients(score, multiply_by_inputs=True)
            inputs = probes[part].clone().requires_grad_(True)
            relevance, delta = ig.attribute(inputs, baselines=baselines[part],
                                            n_steps=self.params.n_steps,
                                            internal_batch_size=self.params.internal_batch_size,
                                            additional_forward_args=(
                                                batch.partner_embeddings[part],),
                                            return_convergence_delta=True)
            maps.append(aggregate_channels(relevance, self.info.aggregation))
            deltas.append(delta.detach())
        return AttributionDetails(
            maps=np.concatenate(maps),
            convergence_delta=torch.cat(deltas).to(torch.float64).cpu().numpy())

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the quadrature rule."""
        return {**super().describe(), "quadrature": "gausslegendre"}


ARC_BLEND = 1e-3
"""Weight of the uniform parametrisation blended into the arc-length one (see
:func:`equal_arc_alphas`): it keeps the node map strictly increasing where the embedding does not
move and makes it uniform when it never moves."""


def equal_arc_alphas(pilot_embeddings: torch.Tensor, n_steps: int) -> NDArray[np.float64]:
    """Path parameters ``0 = t_0 < ... < t_n = 1`` at equal geodesic arc of the embedding.

    Parameters
    ----------
    pilot_embeddings : torch.Tensor
        (M + 1, D) unit embeddings ``f(x(j / M))`` on a uniform pilot grid of the path.
    n_steps : int
        Number of segments ``n``.

    Returns
    -------
    ndarray of float64
        (n + 1,) nodes. With ``L(t)`` the cumulative arc length ``sum arccos(<e_{k-1}, e_k>)``
        of the pilot embeddings (piecewise-linear in ``t`` between pilot points) and
        ``u(t) = (1 - lambda) L(t) / L(1) + lambda t`` (``lambda = ARC_BLEND``), the nodes are
        ``t_i = u^{-1}(i / n)``: every segment advances the embedding by the same arc
        ``(1 - lambda) L(1) / n`` up to the blend and the pilot resolution.
    """
    emb = pilot_embeddings.detach().to(torch.float64)
    cosines = torch.clamp((emb[1:] * emb[:-1]).sum(dim=1), -1.0, 1.0)
    arcs = torch.arccos(cosines).cpu().numpy()
    cumulative = np.concatenate([[0.0], np.cumsum(arcs)])
    grid = np.linspace(0.0, 1.0, emb.shape[0])
    total = cumulative[-1]
    fraction = cumulative / total if total > 0 else grid
    u = (1.0 - ARC_BLEND) * fraction + ARC_BLEND * grid  # strictly increasing, u(0)=0, u(1)=1
    alphas = np.interp(np.linspace(0.0, 1.0, n_steps + 1), u, grid)
    alphas[0], alphas[-1] = 0.0, 1.0
    return alphas


class GeodesicIntegratedGradients(AttributionMethod):
    """Integrated Gradients of the angular similarity, with equal-geodesic-arc path steps.

    **Target.** ``F(x_a) = 1 - d_g(f(x_a), f(x_b)) / pi`` with ``d_g(u, v) = arccos(<u, v>)``
    the geodesic distance between unit embeddings (:class:`AngularSimilarityModule`), the
    partner ``x_b`` fixed. ``F`` is a monotone transform of the cosine score, but its gradient
    ``grad s / (pi sqrt(1 - s^2))`` is re-weighted along the path, so the maps differ from IG's.

    **Path.** The straight line ``x(t) = b + t (x - b)``, ``t in [0, 1]``, from a baseline ``b``
    (as IG; the path itself is not bent).

    **Steps.** The embedding ``f(x(t))`` traces a curve on the unit sphere. It is sampled on a
    uniform pilot grid of ``n_pilot + 1`` points (forward passes only), its cumulative geodesic
    arc length ``L(t)`` is measured, and the ``n_steps`` segments are placed so that each one
    advances the embedding by the same arc ``L(1) / n_steps`` (:func:`equal_arc_alphas`). Steps
    are therefore dense where the embedding moves fast — where the target changes most — and
    sparse where it is flat.

    **Quadrature.** Midpoint rule on those segments:
    ``phi = (x - b) * sum_i (t_i - t_{i-1}) grad F(x((t_{i-1} + t_i) / 2))``, channels summed
    with sign.

    **Completeness.** As for IG, ``sum(phi) -> F(x) - F(b)`` as ``n_steps`` grows (the
    integral is the same; only the nodes move), with the midpoint rule's ``O(1 / n^2)`` error
    for a smooth integrand. The signed residual ``sum(phi) - (F(x) - F(b))`` is returned per pair
    by :meth:`attribute_with_details`.

    **What is new.** IG (Sundararajan et al. 2017) uses uniform (or Gauss-Legendre) nodes in
    ``t``; Guided IG (Kapishnikov et al. 2021) adapts the *path* to avoid high-gradient regions.
    Here the path is IG's straight line and only the quadrature nodes adapt, to the arc length of
    the embedding on the hypersphere, and the explained quantity is the angular similarity that
    the geodesic distance of the falsification test measures. In the limit of many steps the
    method equals IG applied to ``F``; at a finite budget it is a different estimator of that
    integral, and its claimed advantage is a smaller completeness residual per step.

    ``n_steps`` is the number of segments (gradient evaluations) per pair, ``n_pilot`` the
    number of pilot segments (forward passes only).

    Parameters
    ----------
    method_id : str
    params : GeodesicIntegratedGradients.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.
    A. Kapishnikov, S. Venugopalan, B. Avci, B. Wedin, M. Terry, T. Bolukbasi, "Guided Integrated
    Gradients: An Adaptive Path Method for Removing Noise", CVPR 2021.
    """

    info = MethodInfo(name="geodesic_ig", reference="Sundararajan et al. 2017; "
                      "Kapishnikov et al. 2021 (adaptive IG); equal-arc steps defined here",
                      aggregation="signed_sum", multiplies_by_inputs=True,
                      has_convergence_delta=True, stochastic=False, is_control=False)

    @dataclass(frozen=True, kw_only=True)
    class Params(PathParams):
        """Geodesic IG's parameters: IG's and the pilot grid."""

        n_pilot: int = param(64, minimum=1, maximum=1 << 14, unit="steps",
                             doc="pilot segments measuring the arc length (forward passes only)")

    params: Params

    def __init__(self, method_id: str,
                 params: GeodesicIntegratedGradients.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the Geodesic IG maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def _embed_chunks(self, batch: AttributionBatch, points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            rows = self.params.internal_batch_size
            return torch.cat([batch.model.embed(points[i:i + rows])
                              for i in range(0, points.shape[0], rows)])

    def _path_gradients(self, target: nn.Module, partner: torch.Tensor, points: torch.Tensor
                        ) -> torch.Tensor:
        grads = []
        rows = self.params.internal_batch_size
        for i in range(0, points.shape[0], rows):
            chunk = points[i:i + rows].clone().requires_grad_(True)
            value = target(chunk, partner.expand(chunk.shape[0], -1))
            (grad,) = torch.autograd.grad(value.sum(), chunk)
            grads.append(grad)
        return torch.cat(grads)

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps and the signed completeness residual per pair."""
        probes = batch.probes.detach()
        baselines = self.params.make_baselines(probes)
        pilot_t = torch.linspace(0.0, 1.0, self.params.n_pilot + 1, dtype=probes.dtype)
        maps: list[NDArray[np.float64]] = []
        deltas: list[float] = []
        for row in range(probes.shape[0]):
            x, b = probes[row:row + 1], baselines[row:row + 1]
            partner = batch.partner_embeddings[row:row + 1]
            pilot = b + pilot_t.view(-1, 1, 1, 1) * (x - b)
            alphas = equal_arc_alphas(self._embed_chunks(batch, pilot), self.params.n_steps)
            mids = torch.from_numpy((alphas[1:] + alphas[:-1]) / 2).to(probes.dtype)
            widths = torch.from_numpy(np.diff(alphas)).to(probes.dtype)
            target = AngularSimilarityModule(batch.model, partner)
            grads = self._path_gradients(target, partner, b + mids.view(-1, 1, 1, 1) * (x - b))
            relevance = (x - b) * (widths.view(-1, 1, 1, 1) * grads).sum(dim=0, keepdim=True)
            with torch.no_grad():
                ends = target(torch.cat([x, b]), partner.expand(2, -1))
            deltas.append(float(relevance.to(torch.float64).sum() - (ends[0] - ends[1])))
            maps.append(aggregate_channels(relevance, self.info.aggregation))
        return AttributionDetails(maps=np.concatenate(maps),
                                  convergence_delta=np.asarray(deltas, dtype=np.float64))

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the quadrature rule."""
        return {**super().describe(), "quadrature": "midpoint at equal geodesic arc"}
