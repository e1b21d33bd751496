"""Attention rollout and its gradient-weighted variant, for Vision Transformers.

Both read the attention probabilities ``A_l`` (N, heads, T, T) of every self-attention layer of
a ViT-style network whose token 0 is the class token and tokens ``1 .. g^2`` a ``g x g`` patch
grid, combine them across layers into a token-to-token relevance matrix ``R`` (N, T, T), and
take the class token's row over the patches, ``R[:, 0, 1:]``, as a ``g x g`` map, upsampled to
the input size (the grid and the upsampling are returned as the native resolution, as for the
CAM methods).

An *attention layer* is an ``nn.Softmax`` module whose output is a square (N, heads, T, T)
tensor (e.g. ``attn.softmax`` of :class:`faceattr.models.synthetic_vit.SelfAttention`); a model
without one raises :class:`~faceattr.attribution.base.UnsupportedModelError` (the engine then
records ``error:UnsupportedModelError`` for every pair, never a substitute map).

*Target.* Plain rollout depends on the probe only: it is the same map whatever the partner,
so it does not explain the verification score ``s(x_a, x_b)`` but the attention flow of the
probe's forward pass (faceattr.testing's ``partner_dependence`` check fails for it by design).
The gradient-weighted rollout weights each attention by ``d s / d A`` of the verification
score with the partner embedding fixed, so it depends on the pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from captum.attr import LayerAttribution
from numpy.typing import NDArray
from torch import nn

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionDetails,
    AttributionMethod,
    MethodInfo,
    UnsupportedModelError,
    VerificationScoreModule,
)
from faceattr.models.base import VerificationModel
from faceattr.params import param

__all__ = ["AttentionRollout", "GradientAttentionRollout", "attention_layers",
           "gradient_rollout", "rollout"]

Upsampling = Literal["bilinear", "nearest"]
HeadFusion = Literal["mean", "max", "min"]


def attention_layers(model: VerificationModel, probe: torch.Tensor) -> list[str]:
    """Names of the model's attention layers in forward order (see the module docstring).

    Raises
    ------
    UnsupportedModelError
        If the network has no ``nn.Softmax`` with (N, heads, T, T) output, or ``T - 1`` is not
        a square number of patch tokens.
    """
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = [module.register_forward_hook(
        lambda _m, _i, out, name=name: seen.append((name, tuple(out.shape))))
        for name, module in model.named_layers().items() if isinstance(module, nn.Softmax)]
    try:
        with torch.no_grad():
            model.embed(probe[:1])
    finally:
        for handle in handles:
            handle.remove()
    names = [name for name, shape in seen if len(shape) == 4 and shape[-1] == shape[-2]]
    if not names:
        raise UnsupportedModelError(
            f"attention rollout is not supported for model {model.name!r}: it has no attention "
            "layer (an nn.Softmax module whose output is (N, heads, T, T) attention "
            "probabilities); use it on a Vision Transformer such as 'synthetic_vit'")
    n_tokens = dict(seen)[names[0]][-1]
    grid = math.isqrt(n_tokens - 1)
    if grid * grid != n_tokens - 1:
        raise UnsupportedModelError(
            f"attention rollout is not supported for model {model.name!r}: {n_tokens} tokens "
            "are not one class token plus a square patch grid")
    return list(dict.fromkeys(names))


def _capture(model: VerificationModel, names: list[str],
             run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``run()`` with hooks on the named softmax modules; return its output and theirs."""
    captured: dict[str, torch.Tensor] = {}
    layers = model.named_layers()
    handles = [layers[name].register_forward_hook(
        lambda _m, _i, out, name=name: captured.__setitem__(name, out)) for name in names]
    try:
        output = run()
    finally:
        for handle in handles:
            handle.remove()
    return output, [captured[name] for name in names]


def rollout(attentions: list[torch.Tensor], head_fusion: HeadFusion = "mean") -> torch.Tensor:
    """Attention rollout ``R = A'_L ... A'_1`` with ``A'_l = rownorm(0.5 fuse(A_l) + 0.5 I)``.

    Parameters
    ----------
    attentions : list of torch.Tensor
        (N, heads, T, T) attention probabilities, input side first.
    head_fusion : {"mean", "max", "min"}
        How the heads are fused (Abnar & Zuidema average them).

    Returns
    -------
    torch.Tensor
        (N, T, T) float64; row ``i`` is how much each input token flows into token ``i``.
    """
    result: torch.Tensor | None = None
    for attention in attentions:
        heads = attention.detach().to(torch.float64)
        if head_fusion == "mean":
            fused = heads.mean(dim=1)
        elif head_fusion == "max":
            fused = heads.amax(dim=1)
        else:
            fused = heads.amin(dim=1)
        eye = torch.eye(fused.shape[-1], dtype=torch.float64).expand_as(fused)
        mixed = 0.5 * fused + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed if result is None else mixed @ result
    if result is None:
        raise ValueError("rollout needs at least one attention layer")
    return result


def gradient_rollout(attentions: list[torch.Tensor],
                     gradients: list[torch.Tensor]) -> torch.Tensor:
    """Gradient-weighted rollout ``R <- R + E_h[(dS/dA * A)^+] R`` from ``R = I``.

    Parameters
    ----------
    attentions, gradients : list of torch.Tensor
        (N, heads, T, T) attention probabilities and the gradients of the explained score with
        respect to them, input side first.

    Returns
    -------
    torch.Tensor
        (N, T, T) float64 relevance matrix.
    """
    if not attentions or len(attentions) != len(gradients):
        raise ValueError("gradient rollout needs one gradient per attention layer")
    n, _, t, _ = attentions[0].shape
    result = torch.eye(t, dtype=torch.float64).expand(n, t, t).clone()
    for attention, gradient in zip(attentions, gradients, strict=True):
        weighted = (gradient.detach().to(torch.float64)
                    * attention.detach().to(torch.float64)).clamp(min=0).mean(dim=1)
        result = result + weighted @ result
    return result


class _RolloutMethod(AttributionMethod):
    params: object

    def _upsampling(self) -> Upsampling:
        raise NotImplementedError

    def _relevance(self, batch: AttributionBatch, names: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the upsampled class-token maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps with the attention layers read, the patch grid and the upsampling."""
        names = attention_layers(batch.model, batch.probes)
        relevance = self._relevance(batch, names)
        grid = math.isqrt(relevance.shape[-1] - 1)
        native = relevance[:, 0, 1:].reshape(-1, 1, grid, grid)
        height, width = batch.probes.shape[-2:]
        up = LayerAttribution.interpolate(native, (height, width),
                                          interpolate_mode=self._upsampling())
        return AttributionDetails(maps=up[:, 0].cpu().numpy().astype(np.float64),
                                  layer=",".join(names), native_resolution=(grid, grid),
                                  upsampling=self._upsampling())


class AttentionRollout(_RolloutMethod):
    """Attention rollout of a Vision Transformer (target-independent).

    ``R = A'_L ... A'_1`` with ``A'_l`` the head-fused attention of layer ``l`` mixed half and
    half with the identity (the residual connection) and row-normalised; the map is the class
    token's row over the patch tokens, upsampled from the patch grid. It depends on the probe
    only, not on the partner (see the module docstring).

    References
    ----------
    S. Abnar, W. Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
    """

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """How heads are fused and how the patch-grid map reaches the input size."""

        head_fusion: HeadFusion = param("mean", doc="fusion of the heads of each layer "
                                        "(Abnar & Zuidema: mean)")
        upsampling: Upsampling = param("bilinear",
                                       doc="interpolation of the patch-grid map to the input size")

    info = MethodInfo(name="attention_rollout", reference="Abnar & Zuidema 2020",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=False, explains_score=False)
    params: Params

    def __init__(self, method_id: str, params: AttentionRollout.Params | None = None) -> None:
        super().__init__(method_id, params)

    def _upsampling(self) -> Upsampling:
        return self.params.upsampling

    def _relevance(self, batch: AttributionBatch, names: list[str]) -> torch.Tensor:
        with torch.no_grad():
            _, attentions = _capture(batch.model, names, lambda: batch.model.embed(batch.probes))
        return rollout(attentions, self.params.head_fusion)


class GradientAttentionRollout(_RolloutMethod):
    """Gradient-weighted attention rollout of the verification score.

    ``R^0 = I``; for each attention layer, input side first,
    ``R <- R + E_h[(d s / d A_l * A_l)^+] R`` with ``s = s(x_a, x_b)`` the verification score
    (partner embedding fixed) and ``E_h`` the mean over heads; the map is ``R[0, 1:]`` on the
    patch grid, upsampled. This is the LRP-free relevance-update rule of Chefer et al.'s generic
    attention explainability (ICCV 2021), which replaces the LRP relevances of their CVPR 2021
    method by the attention maps themselves; the LRP part of the CVPR 2021 method is not
    implemented.

    References
    ----------
    H. Chefer, S. Gur, L. Wolf, "Generic Attention-model Explainability for Interpreting
    Bi-Modal and Encoder-Decoder Transformers", ICCV 2021 (eqs. 5-6).
    H. Chefer, S. Gur, L. Wolf, "Transformer Interpretability Beyond Attention Visualization",
    CVPR 2021 (the gradient-times-relevance weighting it simplifies).
    """

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """How the patch-grid map reaches the input size."""

        upsampling: Upsampling = param("bilinear",
                                       doc="interpolation of the patch-grid map to the input size")

    info = MethodInfo(name="gradient_rollout", reference="Chefer et al. 2021",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=False)
    params: Params

    def __init__(self, method_id: str,
                 params: GradientAttentionRollout.Params | None = None) -> None:
        super().__init__(method_id, params)

    def _upsampling(self) -> Upsampling:
        return self.params.upsampling

    def _relevance(self, batch: AttributionBatch, names: list[str]) -> torch.Tensor:
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        # inputs require grad so the attentions do even when parameters are frozen
        probes = batch.probes.detach().clone().requires_grad_(True)
        scores, attentions = _capture(batch.model, names, lambda: score(probes))
        # rows are independent (no batch statistics): the sum's gradient is each row's own
        gradients = torch.autograd.grad(scores.sum(), attentions)
        return gradient_rollout(attentions, list(gradients))
