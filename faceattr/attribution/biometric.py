"""The dissertation's "Biometric Grad-CAM", as specified, and a spatial variant.

The dissertation defined Biometric Grad-CAM as Grad-CAM (Selvaraju et al. 2017) of the
verification score ``s = <f(x_a), f(x_b)>`` whose channel weights are multiplied by an
*inverse-variance* channel weighting and by an *identity weighting*
``w_id = sigmoid(5 (s - 0.5))`` of the pair score. Implemented here exactly so, per pair, at the
CAM layer (activations ``A`` (K, h, w), gradient ``G = d s / d A``):

- ``alpha_c = mean_{x,y} G_c(x, y)`` (Grad-CAM's channel weight, as ``captum``'s
  ``LayerGradCam`` computes it);
- ``r_c = 1 / (Var_{x,y}[A_c] + eps)`` (population variance over the ``h w`` locations) and
  ``v_c = r_c / mean_k r_k`` (normalised to mean 1 over the K channels); ``v_c = 1`` with
  ``inverse_variance = false``;
- ``w_id = sigmoid(5 (s - 0.5))``, one positive scalar per pair;
- ``phi = ReLU(w_id sum_c v_c alpha_c A_c)``, upsampled to the input size.

A positive scalar factor cannot change a map after min-max normalisation, nor its pixel ranking:
with ``inverse_variance = false`` the method *is* Grad-CAM (the research code's maps were
identical to Grad-CAM's, PITFALLS.md #20). Only the inverse-variance weighting can make the
as-specified method differ; ``faceattr.testing``'s ``distinct_from_builtins`` check tells which.

:class:`SpatialBiometricGradCAM` makes the identity weighting spatial. The dissertation's idea
(weight each location by how much the probe's features there agree with the partner's) needs
the partner image's activations at the same layer, which an
:class:`~faceattr.attribution.base.AttributionBatch` does not carry: it holds the partner
*embedding* ``f(x_b)`` only. What the partner embedding does give at every location is the
gradient ``G(., x, y) = d s / d A(., x, y)``: the direction in which the local features would
have to move to look more like the partner (the partner embedding back-projected to the layer).
The spatial identity weight is therefore the per-location agreement of the probe's activation
with that gradient, ``c(x, y) = cos(A(., x, y), G(., x, y))`` (0 where either vector is 0), put
through the same sigmoid: ``w_id(x, y) = sigmoid(5 (c(x, y) - 0.5))`` (a LayerCAM-like spatial
weighting, Jiang et al. 2021, not the partner's activations).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum._utils.gradient import compute_layer_gradients_and_eval
from torch import nn

from faceattr.attribution.base import MethodInfo, VerificationScoreModule
from faceattr.attribution.cam import GradCAM
from faceattr.params import param

__all__ = ["IDENTITY_GAIN", "IDENTITY_MIDPOINT", "BiometricGradCAM", "SpatialBiometricGradCAM",
           "identity_weight", "inverse_variance_weights"]

IDENTITY_GAIN: float = 5.0
"""The slope of the dissertation's identity weighting ``sigmoid(5 (s - 0.5))``."""

IDENTITY_MIDPOINT: float = 0.5
"""The score at which the dissertation's identity weighting is one half."""

_REFERENCE = ("Selvaraju et al. 2017 (Grad-CAM); the dissertation's Biometric Grad-CAM "
              "(identity weighting sigmoid(5 (s - 0.5)), inverse-variance channel weights)")


def identity_weight(similarity: torch.Tensor) -> torch.Tensor:
    """The dissertation's identity weighting ``sigmoid(5 (s - 0.5))``, elementwise.

    Parameters
    ----------
    similarity : torch.Tensor
        A pair score ``s`` (or, for the spatial variant, a per-location cosine), any shape.

    Returns
    -------
    torch.Tensor
        Values in (0, 1), the shape of ``similarity``.
    """
    return torch.sigmoid(IDENTITY_GAIN * (similarity - IDENTITY_MIDPOINT))


def inverse_variance_weights(activation: torch.Tensor, eps: float) -> torch.Tensor:
    """Channel weights ``1 / (Var_{x,y}[A_c] + eps)`` normalised to mean 1 per pair.

    Parameters
    ----------
    activation : torch.Tensor
        Layer activations (N, K, h, w).
    eps : float
        Added to each channel's spatial variance (population variance, ``h w`` locations).

    Returns
    -------
    torch.Tensor
        (N, K, 1, 1), positive, mean 1 over the K channels of each pair.
    """
    variance = activation.var(dim=(2, 3), unbiased=False, keepdim=True)
    raw = 1.0 / (variance + eps)
    weights: torch.Tensor = raw / raw.mean(dim=1, keepdim=True)
    return weights


class BiometricGradCAM(GradCAM):
    """The dissertation's Biometric Grad-CAM of the verification score, as specified.

    ``phi = ReLU(w_id sum_c v_c alpha_c A_c)`` with ``alpha_c = mean_{x,y} d s / d A_c``
    (Grad-CAM), ``v_c = r_c / mean_k r_k``, ``r_c = 1 / (Var_{x,y}[A_c] + eps)`` (inverse-variance
    channel weights of mean 1; ``v_c = 1`` with ``inverse_variance = false``) and the identity
    weighting ``w_id = sigmoid(5 (s - 0.5))`` of the pair score ``s``; upsampled like
    :class:`~faceattr.attribution.cam.GradCAM` (the same layer and upsampling parameters).

    ``w_id`` is one positive number per pair, so it has no effect after min-max normalisation
    or on the pixel ranking: with ``inverse_variance = false`` (the research code's effective
    version) the maps are Grad-CAM's up to float rounding, and ``faceattr.testing``'s
    ``distinct_from_builtins`` check fails for it (PITFALLS.md #20). Registered with
    ``inverse_variance = true`` by default.

    Parameters
    ----------
    method_id : str
    params : BiometricGradCAM.Params, optional
        See ``Params`` (Grad-CAM's ``layer`` and ``upsampling``, plus ``inverse_variance`` and
        ``variance_eps``; defaults when omitted).

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
    Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
    The dissertation's "Biometric Grad-CAM": identity weighting ``sigmoid(5 (w - 0.5))`` of the
    pair score ``w`` times an inverse-variance weighting of Grad-CAM's channel weights.
    """

    info = MethodInfo(name="biometric_grad_cam", reference=_REFERENCE, aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    @dataclass(frozen=True, kw_only=True)
    class Params(GradCAM.Params):
        """Grad-CAM's layer and upsampling, and the channel weighting."""

        inverse_variance: bool = param(True, doc="multiply Grad-CAM's channel weights by "
                                       "1/(spatial variance + eps), normalised to mean 1 (false: "
                                       "weights 1; biometric_grad_cam is then Grad-CAM x w_id)")
        variance_eps: float = param(1e-6, minimum=1e-12, maximum=1.0,
                                    doc="added to each channel's spatial activation variance")

    params: Params

    def __init__(self, method_id: str, params: BiometricGradCAM.Params | None = None) -> None:
        super().__init__(method_id, params)

    def _identity(self, scores: torch.Tensor, gradient: torch.Tensor,
                  activation: torch.Tensor) -> torch.Tensor:
        """The identity weighting, broadcastable to (N, 1, h, w): one scalar per pair here."""
        del gradient, activation
        return identity_weight(scores).reshape(-1, 1, 1, 1)

    def _layer_maps(self, score: VerificationScoreModule, layer: nn.Module,
                    probes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        grads, evals = compute_layer_gradients_and_eval(score, layer, probes,
                                                        additional_forward_args=(partner,))
        gradient, activation = grads[0].detach(), evals[0].detach()
        with torch.no_grad():
            scores = score(probes.detach(), partner)
        # Grad-CAM's channel weights, computed as captum's LayerGradCam computes them
        alpha = torch.mean(gradient, dim=(2, 3), keepdim=True)
        if self.params.inverse_variance:
            alpha = alpha * inverse_variance_weights(activation, self.params.variance_eps)
        cam = torch.sum(alpha * activation, dim=1, keepdim=True)
        return torch.relu(self._identity(scores, gradient, activation) * cam)


class SpatialBiometricGradCAM(BiometricGradCAM):
    """Biometric Grad-CAM whose identity weighting varies over the layer's locations.

    ``phi(x, y) = ReLU(w_id(x, y) sum_c v_c alpha_c A_c(x, y))``: :class:`BiometricGradCAM`
    with the pair score ``s`` in ``w_id = sigmoid(5 (s - 0.5))`` replaced by the per-location
    agreement ``c(x, y) = cos(A(., x, y), G(., x, y))`` of the probe's activation vector with the
    score's gradient ``G = d s / d A`` there (0 where either is the zero vector).

    The partner image's activations at the layer (what a per-location comparison of the two
    faces would use) are not available: an attribution batch carries the partner embedding
    only. ``G(., x, y)`` is the partner embedding back-projected to location ``(x, y)``, so
    ``c(x, y)`` says how far the probe's local features point where the partner pulls them — a
    LayerCAM-like spatial weighting (Jiang et al. 2021), stated as such.

    Parameters
    ----------
    method_id : str
    params : BiometricGradCAM.Params, optional
        The same parameters as :class:`BiometricGradCAM` (defaults when omitted).

    References
    ----------
    R. R. Selvaraju et al., "Grad-CAM", ICCV 2017; P.-T. Jiang et al., "LayerCAM: Exploring
    Hierarchical Class Activation Maps for Localization", IEEE TIP 30, 2021; the dissertation's
    Biometric Grad-CAM (identity weighting ``sigmoid(5 (w - 0.5))``).
    """

    info = MethodInfo(name="spatial_biometric_grad_cam",
                      reference=_REFERENCE + "; spatial identity weighting cos(A, ds/dA) per "
                      "location defined here (cf. Jiang et al. 2021)", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    def _identity(self, scores: torch.Tensor, gradient: torch.Tensor,
                  activation: torch.Tensor) -> torch.Tensor:
        """``sigmoid(5 (cos(A(., x, y), G(., x, y)) - 0.5))``, (N, 1, h, w)."""
        del scores
        dot = torch.sum(activation * gradient, dim=1, keepdim=True)
        norms = (torch.linalg.vector_norm(activation, dim=1, keepdim=True)
                 * torch.linalg.vector_norm(gradient, dim=1, keepdim=True))
        cosine = torch.where(norms > 0, dot / torch.where(norms > 0, norms, 1.0),
                             torch.zeros_like(dot))
        return identity_weight(cosine)
