"""Guided Backpropagation and Guided Grad-CAM of the verification score (captum).

Guided backpropagation replaces the backward pass of every ReLU by ``ReLU(grad_in)``: only
positive gradient flows back, and only through units that were active in the forward pass.
captum implements the rule with backward hooks on ``nn.ReLU`` *modules*; a ReLU applied as a
function (``F.relu``, ``torch.relu``, ``x.relu()``) is invisible to those hooks and silently
gets its plain gradient, and so does any other activation. Both methods therefore first trace
one forward pass and raise :class:`~faceattr.attribution.base.UnsupportedModelError` unless
every rectifier of the network is an ``nn.ReLU`` module (:func:`guided_support`), instead of
returning maps that are partly plain gradients.

These are the methods Adebayo et al. (2018) found insensitive to the model's parameters: their
maps barely change when the top layers are re-initialised. The synthetic protocol declares them
``expected_insensitive`` under cascading randomisation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import torch
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionDetails,
    AttributionMethod,
    MethodInfo,
    UnsupportedModelError,
    VerificationScoreModule,
    aggregate_channels,
)
from faceattr.attribution.cam import AUTO_LAYER, resolve_cam_layer
from faceattr.attribution.propagation import _without_inplace_relus
from faceattr.models.base import VerificationModel
from faceattr.params import param

__all__ = ["GuidedBackprop", "GuidedGradCAM", "guided_support"]

_RELU_FUNCTIONS: Final[frozenset[Callable[..., Any]]] = frozenset({
    F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_})
"""ReLU as a function: inside an ``nn.ReLU`` module's forward it is the module's own call."""

_OTHER_ACTIVATIONS: Final[dict[Callable[..., Any], str]] = {
    F.leaky_relu: "leaky_relu", F.leaky_relu_: "leaky_relu", F.prelu: "prelu",
    F.rrelu: "rrelu", F.relu6: "relu6", F.hardtanh: "hardtanh", F.elu: "elu", F.selu: "selu",
    F.celu: "celu", F.gelu: "gelu", F.silu: "silu", F.mish: "mish", F.hardswish: "hardswish",
    F.softplus: "softplus"}
"""Rectifier-like activations (module or function) that captum's guided rule does not
override: a network using them would get plain gradients through them."""

_CAPTUM_HOOK_WARNING = r"Setting backward hooks on ReLU activations"


class _ActivationTrace(TorchFunctionMode):
    """Counts ReLU calls made outside ``nn.ReLU`` modules and other rectifier calls."""

    def __init__(self) -> None:
        super().__init__()
        self.module_depth = 0
        self.module_calls = 0
        self.functional_relus = 0
        self.others: set[str] = set()

    def __torch_function__(self, func: Callable[..., Any], types: Any,
                           args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
                           ) -> Any:
        if func in _RELU_FUNCTIONS and self.module_depth == 0:
            self.functional_relus += 1
        elif func in _OTHER_ACTIVATIONS:
            self.others.add(_OTHER_ACTIVATIONS[func])
        return func(*args, **(kwargs or {}))


@contextmanager
def _relu_module_hooks(network: nn.Module, trace: _ActivationTrace) -> Iterator[None]:
    def enter(_module: nn.Module, _inputs: Any) -> None:
        trace.module_depth += 1
        trace.module_calls += 1

    def leave(_module: nn.Module, _inputs: Any, _output: Any) -> None:
        trace.module_depth -= 1

    handles = []
    for module in network.modules():
        if isinstance(module, nn.ReLU):
            handles += [module.register_forward_pre_hook(enter),
                        module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def guided_support(model: VerificationModel, probe: torch.Tensor) -> str | None:
    """Why guided backpropagation cannot be applied faithfully to ``model``, or ``None``.

    Traces one forward pass of ``probe[:1]`` (no gradient) with a ``TorchFunctionMode`` and
    forward hooks on the ``nn.ReLU`` modules. Guided backpropagation is defined by its ReLU
    rule, and captum applies that rule only at ``nn.ReLU`` modules, so the model is supported
    exactly when (1) at least one ``nn.ReLU`` module runs, (2) no ReLU runs as a function
    outside one, and (3) no other rectifier-like activation (leaky ReLU, PReLU, ELU, GELU,
    SiLU, ...) runs, as a module or a function.

    Parameters
    ----------
    model : VerificationModel
    probe : torch.Tensor
        (N, 3, H, W) images in [0, 1]; the first row is traced.

    Returns
    -------
    str or None
        A one-line reason, or ``None`` when the model is supported.
    """
    trace = _ActivationTrace()
    with _relu_module_hooks(model.network, trace), torch.no_grad(), trace:
        model.embed(probe[:1])
    if trace.functional_relus:
        return (f"{trace.functional_relus} ReLU(s) run as functions (F.relu / torch.relu), "
                "not nn.ReLU modules; captum's guided rule would skip them and give their "
                "plain gradient (use nn.ReLU modules)")
    if trace.others:
        return (f"the network uses {', '.join(sorted(trace.others))}; guided backpropagation "
                "overrides only nn.ReLU")
    if trace.module_calls == 0:
        return "the network runs no nn.ReLU module; guided backpropagation has nothing to guide"
    return None


def _guided_model(batch: AttributionBatch, method: str) -> VerificationModel:
    reason = guided_support(batch.model, batch.probes)
    if reason is not None:
        raise UnsupportedModelError(f"{method} is not supported for model "
                                    f"{batch.model.name!r}: {reason}")
    # captum's full backward hooks need the ReLU inputs intact: out-of-place ReLUs on a copy
    return _without_inplace_relus(batch.model)


@contextmanager
def _quiet_captum_hooks() -> Iterator[None]:
    with warnings.catch_warnings():
        # captum announces on every call that it hooks the ReLU modules (and removes the hooks
        # afterwards); informational, and only this exact message is silenced
        warnings.filterwarnings("ignore", message=_CAPTUM_HOOK_WARNING, category=UserWarning)
        yield


class GuidedBackprop(AttributionMethod):
    """Guided backpropagation of the verification score w.r.t. the probe.

    ``phi = sum_c |g_c|`` where ``g`` is the gradient of ``s(x_a, x_b)`` computed with every
    ReLU's backward replaced by ``ReLU(grad)`` (``captum.attr.GuidedBackprop`` on
    :class:`~faceattr.attribution.base.VerificationScoreModule`), channels aggregated like
    :class:`~faceattr.attribution.gradient.Saliency`. Models whose rectifiers are not all
    ``nn.ReLU`` modules raise :class:`~faceattr.attribution.base.UnsupportedModelError`
    (:func:`guided_support`).

    References
    ----------
    J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller, "Striving for Simplicity: The
    All Convolutional Net", ICLR Workshop 2015.

    J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for
    Saliency Maps", NeurIPS 2018 (its maps are insensitive to the model's parameters).
    """

    info = MethodInfo(name="guided_backprop", reference="Springenberg et al. 2015",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``sum_c |guided gradient|`` per pixel, (N, H, W)."""
        model = _guided_model(batch, self.info.name)
        score = VerificationScoreModule(model, batch.partner_embeddings)
        probes = batch.probes.detach().clone().requires_grad_(True)
        with _quiet_captum_hooks():
            relevance = CaptumGuidedBackprop(score).attribute(
                probes, additional_forward_args=(batch.partner_embeddings,))
        return aggregate_channels(relevance, self.info.aggregation)


class GuidedGradCAM(AttributionMethod):
    """Guided Grad-CAM of the verification score: guided backpropagation times Grad-CAM.

    ``phi = sum_c |GB_c * up(ReLU(sum_k alpha_k A_k))|``: the guided-backpropagation gradient
    (:class:`GuidedBackprop`) multiplied pixel-wise by the Grad-CAM map of a layer upsampled to
    the input size, computed by ``captum.attr.GuidedGradCam`` and aggregated over channels by
    absolute sum. The layer is resolved as for Grad-CAM
    (:func:`~faceattr.attribution.cam.resolve_cam_layer`) and reported with its native
    resolution; the same ReLU requirement as :class:`GuidedBackprop` applies.

    Parameters
    ----------
    method_id : str
    params : GuidedGradCAM.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
    Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.

    J. Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018.
    """

    info = MethodInfo(name="guided_grad_cam", reference="Selvaraju et al. 2017",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The Grad-CAM layer and how its map reaches the input size."""

        layer: str = param(AUTO_LAYER, doc="module name of the Grad-CAM layer, or 'auto': the "
                           "last convolutional block (see resolve_cam_layer)")
        upsampling: Literal["bilinear", "nearest"] = param(
            "bilinear", doc="interpolation of the Grad-CAM map to the input size")

    params: Params

    def __init__(self, method_id: str, params: GuidedGradCAM.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the Guided Grad-CAM maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps with the Grad-CAM layer, its native (h, w) and the upsampling."""
        model = _guided_model(batch, self.info.name)
        name = resolve_cam_layer(model, self.params.layer, batch.probes)
        layer = model.named_layers()[name]
        native: list[tuple[int, int]] = []
        handle = layer.register_forward_hook(
            lambda _m, _i, out: native.append((int(out.shape[-2]), int(out.shape[-1]))))
        score = VerificationScoreModule(model, batch.partner_embeddings)
        probes = batch.probes.detach().clone().requires_grad_(True)
        try:
            with _quiet_captum_hooks():
                relevance = CaptumGuidedGradCam(score, layer).attribute(
                    probes, additional_forward_args=(batch.partner_embeddings,),
                    interpolate_mode=self.params.upsampling)
        finally:
            handle.remove()
        if relevance.shape != probes.shape:  # captum returns an empty tensor when it cannot
            raise UnsupportedModelError(f"guided_grad_cam: the map of layer {name!r} could not "
                                        "be upsampled to the input size")
        return AttributionDetails(maps=aggregate_channels(relevance, self.info.aggregation),
                                  layer=name, native_resolution=native[0],
                                  upsampling=self.params.upsampling)
