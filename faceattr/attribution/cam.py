"""Class-activation maps of the verification score at a declared layer: Grad-CAM, LayerCAM.

Both read one layer's activations ``A`` (N, K, h, w) and the gradient ``g = d s / d A`` of the
verification score, build an (h, w) map at the layer's *native* resolution and upsample it to
the input size. The layer, its native resolution and the upsampling are returned by
:meth:`~faceattr.attribution.base.AttributionMethod.attribute_with_details` (ARCHITECTURE.md:
"record the layer and its native spatial resolution"); at a 3x3 layer a map has 9 distinct
values before upsampling, which bounds how finely it can rank pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from captum._utils.gradient import compute_layer_gradients_and_eval
from captum.attr import LayerAttribution, LayerGradCam
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

__all__ = ["GradCAM", "LayerCAM", "resolve_cam_layer"]

Upsampling = Literal["bilinear", "nearest"]
AUTO_LAYER = "auto"


def resolve_cam_layer(model: VerificationModel, layer: str, probe: torch.Tensor) -> str:
    """Return the layer name a CAM method reads.

    ``layer = "auto"`` picks, among the network's named modules, the last one to finish in the
    forward pass whose output has the spatial shape of the last ``nn.Conv2d``'s output — the last
    convolutional block after its normalisation and activation (``act4`` of the synthetic CNN,
    ``block8`` of FaceNet). Any other value must name a module of the network.

    Raises
    ------
    UnsupportedModelError
        If the layer does not exist, or ``"auto"`` finds no convolution.
    """
    layers = model.named_layers()
    if layer != AUTO_LAYER:
        if layer not in layers or layer == "":
            raise UnsupportedModelError(f"model {model.name!r} has no layer {layer!r}")
        return layer
    finished: list[tuple[str, tuple[int, ...], bool]] = []
    handles = [module.register_forward_hook(
        lambda mod, _inp, out, name=name: finished.append(
            (name, tuple(out.shape) if isinstance(out, torch.Tensor) else (),
             isinstance(mod, nn.Conv2d))))
        for name, module in layers.items() if name]
    try:
        with torch.no_grad():
            model.embed(probe[:1])
    finally:
        for handle in handles:
            handle.remove()
    convs = [i for i, (_, _, is_conv) in enumerate(finished) if is_conv]
    if not convs:
        raise UnsupportedModelError(f"model {model.name!r} has no Conv2d layer for a CAM")
    spatial = finished[convs[-1]][1][2:]
    candidates = [name for name, shape, _ in finished[convs[-1]:]
                  if len(shape) == 4 and shape[2:] == spatial]
    return candidates[-1]


class _CamMethod(AttributionMethod):
    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The layer a CAM reads and how its map reaches the input size."""

        layer: str = param(AUTO_LAYER, doc="module name of the layer read, or 'auto': the last "
                           "convolutional block (see resolve_cam_layer)")
        upsampling: Upsampling = param("bilinear",
                                       doc="interpolation of the layer map to the input size")

    params: Params

    def __init__(self, method_id: str, params: _CamMethod.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the upsampled maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def _layer_maps(self, score: VerificationScoreModule, layer: nn.Module,
                    probes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps with the layer, its native (h, w) and the upsampling."""
        name = resolve_cam_layer(batch.model, self.params.layer, batch.probes)
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        # inputs require grad so the layer output does even when parameters are frozen
        probes = batch.probes.detach().clone().requires_grad_(True)
        native = self._layer_maps(score, batch.model.named_layers()[name], probes,
                                  batch.partner_embeddings)
        height, width = probes.shape[-2:]
        up = LayerAttribution.interpolate(native.detach(), (height, width),
                                          interpolate_mode=self.params.upsampling)
        maps = up[:, 0].to(torch.float64).cpu().numpy()
        return AttributionDetails(maps=maps, layer=name,
                                  native_resolution=(int(native.shape[-2]),
                                                     int(native.shape[-1])),
                                  upsampling=self.params.upsampling)


class GradCAM(_CamMethod):
    """Grad-CAM of the verification score at a layer.

    ``phi = ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of ``d s / d A_k``,
    computed by ``captum.attr.LayerGradCam(relu_attributions=True)`` and upsampled
    (``LayerAttribution.interpolate``, bilinear by default) to the input size.

    Parameters
    ----------
    method_id : str
    params : GradCAM.Params, optional
        See ``Params`` (``layer``: a module name or ``"auto"``, :func:`resolve_cam_layer`;
        defaults when omitted).

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
    Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
    """

    info = MethodInfo(name="grad_cam", reference="Selvaraju et al. 2017", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    def _layer_maps(self, score: VerificationScoreModule, layer: nn.Module,
                    probes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        cam = LayerGradCam(score, layer).attribute(probes, additional_forward_args=(partner,),
                                                   relu_attributions=True)
        assert isinstance(cam, torch.Tensor)
        return cam


class LayerCAM(_CamMethod):
    """LayerCAM of the verification score at a layer.

    ``phi = ReLU(sum_k ReLU(d s / d A_k^{ij}) * A_k^{ij})``: each activation is weighted by its
    own positive gradient (not a channel-wide mean as in Grad-CAM). captum has no LayerCAM; the
    activations and gradients come from ``captum._utils.gradient.
    compute_layer_gradients_and_eval``, the routine captum's own layer methods use.

    Parameters
    ----------
    method_id : str
    params : LayerCAM.Params, optional
        See ``Params`` (the same as :class:`GradCAM`'s; defaults when omitted).

    References
    ----------
    P.-T. Jiang, C.-B. Zhang, Q. Hou, M.-M. Cheng, Y. Wei, "LayerCAM: Exploring Hierarchical
    Class Activation Maps for Localization", IEEE Transactions on Image Processing 30, 2021.
    """

    info = MethodInfo(name="layer_cam", reference="Jiang et al. 2021", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=False,
                      is_control=False)

    def _layer_maps(self, score: VerificationScoreModule, layer: nn.Module,
                    probes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        grads, evals = compute_layer_gradients_and_eval(score, layer, probes,
                                                        additional_forward_args=(partner,))
        gradient, activation = grads[0], evals[0]
        weighted = torch.relu(gradient) * activation
        return torch.relu(weighted.sum(dim=1, keepdim=True))
