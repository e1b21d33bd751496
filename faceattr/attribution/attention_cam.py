"""Branch-attention CAM at an Inception(-ResNet) block: per-branch Grad-CAM, weighted by branch.

An Inception-ResNet block (FaceNet's ``Block35``/``Block17``/``Block8``; Szegedy et al. 2017)
runs parallel branches ``branch0, branch1, ...`` whose outputs ``X_b`` (N, K_b, h, w) are
concatenated, projected by a 1x1 convolution, scaled and added to the block input. Grad-CAM and
LayerCAM at the block read its *output*, where the branches are already mixed with each other
and with the residual path. This method reads the branches separately:

- per branch, Grad-CAM weights ``alpha_{b,k} = mean_ij d s / d X_{b,k,ij}`` and the branch map
  ``M_b = ReLU(sum_k alpha_{b,k} X_{b,k})``;
- the branch's share of the positive gradient-weighted contribution,
  ``w_b = sum_ij M_b / sum_b' sum_ij M_b'`` (the *branch attention*; all zero when no branch has
  positive evidence, which gives a flat, i.e. trivial, map);
- ``phi = sum_b w_b M_b`` at the block's resolution, upsampled to the input size.

Two differences from Grad-CAM at the concatenated branches, ``ReLU(sum_b sum_k alpha_{b,k}
X_{b,k})``: the ReLU acts per branch (one branch's negative evidence cannot cancel another's
positive evidence), and the branch weights make dominant branches dominate more (``phi`` is
quadratic in a branch's scale). ``branch_weighting = "uniform"`` drops the weights (``w_b = 1``)
as an ablation. Normalising each ``M_b`` to unit mass before weighting would undo the weighting
exactly (``w_b M_b / sum M_b`` is proportional to ``M_b``), the trap of PITFALLS.md #20.

A block is a module with at least two children named ``branch<i>`` whose outputs share their
spatial size; a model without one raises
:class:`~faceattr.attribution.base.UnsupportedModelError`.
"""

from __future__ import annotations

import re
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

__all__ = ["BranchAttentionCAM", "branch_attention_map", "inception_blocks"]

Upsampling = Literal["bilinear", "nearest"]
BranchWeighting = Literal["contribution", "uniform"]
AUTO_BLOCK = "auto"
_BRANCH = re.compile(r"branch\d+")


def _branches(module: nn.Module) -> list[nn.Module]:
    return [child for name, child in module.named_children() if _BRANCH.fullmatch(name)]


def inception_blocks(model: VerificationModel, probe: torch.Tensor) -> list[str]:
    """Names of the model's Inception blocks (>= 2 ``branch<i>`` children), in forward order.

    Raises
    ------
    UnsupportedModelError
        If the network has no such block.
    """
    candidates = {name: module for name, module in model.named_layers().items()
                  if name and len(_branches(module)) >= 2}
    order: list[str] = []
    handles = [module.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name))
               for name, module in candidates.items()]
    try:
        with torch.no_grad():
            model.embed(probe[:1])
    finally:
        for handle in handles:
            handle.remove()
    blocks = list(dict.fromkeys(order))
    if not blocks:
        raise UnsupportedModelError(
            f"branch-attention CAM is not supported for model {model.name!r}: it has no "
            "Inception block (a module with children branch0, branch1, ...); use it on "
            "FaceNet or 'synthetic_inception'")
    return blocks


def branch_attention_map(activations: list[torch.Tensor], gradients: list[torch.Tensor],
                         weighting: BranchWeighting = "contribution") -> torch.Tensor:
    """Combine per-branch Grad-CAM maps by branch attention (see the module docstring).

    Parameters
    ----------
    activations, gradients : list of torch.Tensor
        Per branch, ``X_b`` and ``d s / d X_b`` (N, K_b, h, w).
    weighting : {"contribution", "uniform"}
        ``w_b`` = the branch's share of the positive contribution, or 1 (ablation).

    Returns
    -------
    torch.Tensor
        (N, 1, h, w) float64 map, non-negative.
    """
    maps = []
    for activation, gradient in zip(activations, gradients, strict=True):
        alpha = gradient.detach().to(torch.float64).mean(dim=(2, 3), keepdim=True)
        maps.append(torch.relu((alpha * activation.detach().to(torch.float64))
                               .sum(dim=1, keepdim=True)))
    stacked = torch.stack(maps, dim=1)  # (N, B, 1, h, w)
    if weighting == "uniform":
        return stacked.sum(dim=1)
    contribution = stacked.sum(dim=(2, 3, 4), keepdim=True)  # (N, B, 1, 1, 1)
    total = contribution.sum(dim=1, keepdim=True)
    weights = torch.where(total > 0, contribution / torch.where(total > 0, total, 1.0), 0.0)
    return (weights * stacked).sum(dim=1)


class BranchAttentionCAM(AttributionMethod):
    """Branch-attention CAM of the verification score at an Inception(-ResNet) block.

    Per-branch Grad-CAM maps of ``s(x_a, x_b)`` (partner embedding fixed), weighted by each
    branch's share of the positive gradient-weighted contribution and summed (module docstring),
    at the block's native resolution, upsampled to the input size.

    Parameters
    ----------
    method_id : str
    params : BranchAttentionCAM.Params, optional
        ``layer`` (a block name or ``"auto"``: the last block in the forward pass, FaceNet's
        ``block8``), ``branch_weighting`` and ``upsampling``.

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
    Explanations from Deep Networks via Gradient-based Localization", ICCV 2017 (the per-branch
    weights). C. Szegedy, S. Ioffe, V. Vanhoucke, A. A. Alemi, "Inception-v4, Inception-ResNet
    and the Impact of Residual Connections on Learning", AAAI 2017 (the blocks). The branch
    weighting is this project's definition (issue #21), not a published method.
    """

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The block read, the branch weighting and the upsampling."""

        layer: str = param(AUTO_BLOCK, doc="module name of the Inception block read, or "
                           "'auto': the last block in the forward pass")
        branch_weighting: BranchWeighting = param(
            "contribution", doc="branch weights: each branch's share of the positive "
            "gradient-weighted contribution, or 'uniform' (ablation: w_b = 1)")
        upsampling: Upsampling = param("bilinear",
                                       doc="interpolation of the block map to the input size")

    info = MethodInfo(name="branch_attention_cam", reference="Selvaraju et al. 2017 (per "
                      "branch); branch attention: faceattr", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)
    params: Params

    def __init__(self, method_id: str, params: BranchAttentionCAM.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the upsampled maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def _block(self, model: VerificationModel, probes: torch.Tensor) -> str:
        blocks = inception_blocks(model, probes)
        if self.params.layer == AUTO_BLOCK:
            return blocks[-1]
        if self.params.layer not in blocks:
            raise UnsupportedModelError(
                f"model {model.name!r} has no Inception block {self.params.layer!r}; blocks: "
                f"{', '.join(blocks[:6])}{' ...' if len(blocks) > 6 else ''}")
        return self.params.layer

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps with the block, its native (h, w) and the upsampling."""
        name = self._block(batch.model, batch.probes)
        branches = _branches(batch.model.named_layers()[name])
        captured: dict[int, torch.Tensor] = {}
        handles = [branch.register_forward_hook(
            lambda _m, _i, out, i=i: captured.__setitem__(i, out))
            for i, branch in enumerate(branches)]
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        # inputs require grad so the branch outputs do even when parameters are frozen
        probes = batch.probes.detach().clone().requires_grad_(True)
        try:
            scores = score(probes)
        finally:
            for handle in handles:
                handle.remove()
        activations = [captured[i] for i in range(len(branches))]
        if len({tuple(a.shape[2:]) for a in activations}) != 1:
            raise UnsupportedModelError(f"the branches of block {name!r} of model "
                                        f"{batch.model.name!r} differ in spatial size")
        # rows are independent (eval mode: no batch statistics): the sum's gradient is per row
        gradients = list(torch.autograd.grad(scores.sum(), activations))
        native = branch_attention_map(activations, gradients, self.params.branch_weighting)
        height, width = probes.shape[-2:]
        up = LayerAttribution.interpolate(native, (height, width),
                                          interpolate_mode=self.params.upsampling)
        return AttributionDetails(maps=up[:, 0].cpu().numpy().astype(np.float64), layer=name,
                                  native_resolution=(int(native.shape[-2]),
                                                     int(native.shape[-1])),
                                  upsampling=self.params.upsampling)
