"""Modified-backpropagation methods: DeepLIFT (captum) and LRP (zennit)."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import torch
from captum.attr import DeepLift as CaptumDeepLift
from numpy.typing import NDArray
from torch import nn

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionDetails,
    AttributionMethod,
    MethodInfo,
    UnsupportedModelError,
    VerificationScoreModule,
    aggregate_channels,
)
from faceattr.attribution.baselines import BaselineParams
from faceattr.attribution.explained import report_values
from faceattr.models.base import VerificationModel, verification_score

__all__ = ["LRP", "DeepLift", "lrp_support"]


def _without_inplace_relus(model: VerificationModel) -> VerificationModel:
    """A copy of the model whose ``nn.ReLU(inplace=True)`` modules are out-of-place.

    captum's DeepLIFT hooks the activation modules and needs their inputs intact; an in-place
    ReLU overwrites them. The original model is left untouched; models without in-place ReLUs are
    returned as they are.
    """
    if not any(isinstance(m, nn.ReLU) and m.inplace for m in model.network.modules()):
        return model
    network = copy.deepcopy(model.network)
    for module in network.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return dataclasses.replace(model, network=network)


class DeepLift(AttributionMethod):
    """DeepLIFT (Rescale rule) of the verification score relative to a baseline.

    Computed by ``captum.attr.DeepLift`` on :class:`VerificationScoreModule` (captum needs the
    target as an ``nn.Module``). The Rescale rule replaces gradients only at the network's
    activation *modules*; the final L2 normalisation and the cosine are functional, so plain
    gradients pass through them and the summation-to-delta property holds only approximately.
    The signed residual ``sum(phi) - (s(x) - s(b))`` is reported per pair by
    :meth:`attribute_with_details` and is not assumed small. In-place ReLUs are replaced by
    out-of-place ones on a copy of the network.

    Parameters
    ----------
    method_id : str
    params : DeepLift.Params, optional
        See ``Params`` (:class:`~faceattr.attribution.baselines.BaselineParams`: the reference
        input; defaults when omitted).

    References
    ----------
    A. Shrikumar, P. Greenside, A. Kundaje, "Learning Important Features Through Propagating
    Activation Differences", ICML 2017.
    """

    info = MethodInfo(name="deeplift", reference="Shrikumar et al. 2017",
                      aggregation="signed_sum", multiplies_by_inputs=True,
                      has_convergence_delta=True, stochastic=False, is_control=False)

    Params = BaselineParams
    params: BaselineParams

    def __init__(self, method_id: str, params: BaselineParams | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the DeepLIFT maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps and the signed summation-to-delta residual per pair."""
        model = _without_inplace_relus(batch.model)
        score = VerificationScoreModule(model, batch.partner_embeddings)
        probes = batch.probes.detach().clone().requires_grad_(True)
        baselines = self.params.make_baselines(batch.probes)
        with warnings.catch_warnings():
            # captum announces on every call that it hooks the activation modules (and removes
            # the hooks afterwards); informational, and only this exact message is silenced
            warnings.filterwarnings("ignore", message=r"Setting forward, backward hooks and "
                                    r"attributes on non-linear", category=UserWarning)
            relevance, delta = CaptumDeepLift(score, multiply_by_inputs=True).attribute(
                probes, baselines=baselines, additional_forward_args=(batch.partner_embeddings,),
                return_convergence_delta=True)
        return AttributionDetails(maps=aggregate_channels(relevance, self.info.aggregation),
                                  convergence_delta=delta.detach().to(torch.float64).numpy())


ZENNIT_INSTALL = "pip install --no-deps zennit==0.5.1"


def _zennit() -> tuple[ModuleType, ModuleType]:
    """Import ``zennit.composites`` and ``zennit.canonizers``.

    zennit's package ``__init__`` imports ``zennit.torchvision`` (canonizers for torchvision's
    ResNets), which needs torchvision; the CPU build of torch used here has no matching
    torchvision on the package index (PyPI's wheel targets the CUDA build and fails to register
    its operators). faceattr does not use those canonizers, so when — and only when —
    torchvision is the missing module, the package is registered without running its
    ``__init__`` and the torchvision-free submodules are imported directly.
    """
    try:
        composites = importlib.import_module("zennit.composites")
    except ModuleNotFoundError as exc:
        if exc.name == "zennit":
            raise ImportError(f"LRP needs zennit: {ZENNIT_INSTALL}") from exc
        if exc.name != "torchvision":
            raise
        spec = importlib.util.find_spec("zennit")
        if spec is None:  # pragma: no cover - find_spec found it a moment ago
            raise ImportError(f"LRP needs zennit: {ZENNIT_INSTALL}") from exc
        sys.modules["zennit"] = importlib.util.module_from_spec(spec)
        composites = importlib.import_module("zennit.composites")
    return composites, importlib.import_module("zennit.canonizers")


_LRP_LEAVES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear,
                                            nn.AvgPool2d, nn.Flatten, nn.Identity)

_SYNTHETIC_BN_PAIRS: tuple[tuple[str, str], ...] = (
    ("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv4", "bn4"))


def lrp_support(model: VerificationModel) -> tuple[list[Any], str | None]:
    """Return the zennit canonizers for ``model`` and ``None``, or ``[]`` and the reason LRP
    cannot be applied.

    LRP rules attach to modules; arithmetic in a ``forward`` (residual sums, scaled branches
    as in FaceNet's Inception-ResNet blocks) is invisible to them and breaks conservation. So
    support is declared per architecture, never guessed: (1) an ``nn.Sequential`` whose children
    are all Conv2d/BatchNorm2d/ReLU/Linear/AvgPool2d/Flatten/Identity (BatchNorm merged into the
    preceding layer by ``SequentialMergeBatchNorm``); (2) the synthetic CNN, whose forward is a
    plain chain, with its conv/BatchNorm pairs merged by ``NamedMergeBatchNorm``. In-place ReLUs
    are refused (zennit's hooks need the activation inputs).
    """
    from faceattr.models.synthetic_cnn import SyntheticFaceCNN

    network = model.network
    _, canonizers = _zennit()
    leaves = [m for m in network.modules() if not list(m.children())]
    bad = sorted({type(m).__name__ for m in leaves if not isinstance(m, _LRP_LEAVES)})
    if bad:
        return [], f"no LRP rule is declared for layers {', '.join(bad)}"
    if any(isinstance(m, nn.ReLU) and m.inplace for m in leaves):
        return [], "in-place ReLUs"
    if type(network) is SyntheticFaceCNN:
        pairs = [([conv], bn) for conv, bn in _SYNTHETIC_BN_PAIRS]
        return [canonizers.NamedMergeBatchNorm(pairs)], None
    if type(network) is nn.Sequential and all(not list(c.children()) for c in network):
        return [canonizers.SequentialMergeBatchNorm()], None
    return [], (f"{type(network).__name__} has no declared LRP rules (functional operations in "
                "its forward would not be conserved)")


class LRP(AttributionMethod):
    """Layer-wise Relevance Propagation of the verification score (zennit, EpsilonPlusFlat).

    **Rules.** zennit's ``EpsilonPlusFlat`` composite: the flat rule at the first layer, z+ at
    the other convolutions, epsilon (1e-6) at linear layers, relevance passed through ReLUs and
    distributed proportionally through average pooling; BatchNorm is first merged into the
    preceding convolution (a canonizer).

    **Top of the network (declared rule).** The score is ``s = <e / ||e||, p>`` with ``e`` the raw
    embedding and ``p`` the partner. The normaliser ``||e||`` is held constant (treated as a
    gate, as LRP treats multiplicative gates), so ``s = sum_j e_j p_j / ||e||`` is a linear
    read-out of ``e`` and the relevance entering the network is ``R_j = e_j p_j / ||e||``, which
    sums to ``s`` exactly.

    **Conservation is reported, not assumed.** Biases (including merged BatchNorm shifts) and the
    epsilon stabiliser absorb relevance; :meth:`attribute_with_details` returns
    ``sum(phi) - s(x)`` per pair. Relevance is taken at the network's input (after the model's
    preprocessing, which is elementwise) and summed over channels with sign.

    Models without declared rules (:func:`lrp_support`) raise :class:`UnsupportedModelError`,
    recorded per pair as ``error:UnsupportedModelError`` — never a substitute map.

    References
    ----------
    S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Mueller, W. Samek, "On Pixel-Wise
    Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation",
    PLoS ONE 10(7), 2015. G. Montavon, A. Binder, S. Lapuschkin, W. Samek, K.-R. Mueller,
    "Layer-Wise Relevance Propagation: An Overview", in Explainable AI, Springer LNCS 11700, 2019.
    C. J. Anders, D. Neumann, W. Samek, K.-R. Mueller, S. Lapuschkin, "Software for Dataset-wide
    XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy",
    arXiv:2106.13200, 2021.
    """

    info = MethodInfo(name="lrp", reference="Bach et al. 2015; Montavon et al. 2019 "
                      "(zennit EpsilonPlusFlat)", aggregation="signed_sum",
                      multiplies_by_inputs=True, has_convergence_delta=True, stochastic=False,
                      is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the LRP maps (N, H, W)."""
        return self.attribute_with_details(batch).maps

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps and the conservation residual ``sum(phi) - s(x)`` per pair."""
        canonizers, reason = lrp_support(batch.model)
        if reason is not None:
            raise UnsupportedModelError(f"LRP is not supported for model {batch.model.name!r}: "
                                        f"{reason}")
        composites, _ = _zennit()
        composite = composites.EpsilonPlusFlat(canonizers=canonizers)
        inputs = batch.model.preprocess(batch.probes.detach()).clone().requires_grad_(True)
        partner = batch.partner_embeddings.detach()
        with composite.context(batch.model.network) as network:
            raw = network(inputs)
            with torch.no_grad():
                top = raw * partner / raw.norm(dim=1, keepdim=True)
                # the output relevances sum to the propagated scalar, <raw / ||raw||, f(x_b)>:
                # checked against score_clean (faceattr.attribution.explained)
                report_values(batch.probes, partner, top.sum(dim=1))
            (relevance,) = torch.autograd.grad(raw, inputs, grad_outputs=top)
        with torch.no_grad():
            score = verification_score(batch.model.embed(batch.probes), partner)
        delta = relevance.to(torch.float64).sum(dim=(1, 2, 3)) - score.to(torch.float64)
        return AttributionDetails(maps=aggregate_channels(relevance, self.info.aggregation),
                                  convergence_delta=delta.numpy())
