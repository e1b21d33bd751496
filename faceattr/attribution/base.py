"""The attribution-method interface: every method explains the verification score.

The explained scalar is ``s(x_a, x_b) = <f(x_a), f(x_b)>`` as a function of the probe ``x_a``
with the partner embedding ``f(x_b)`` fixed — never the norm of a normalised embedding, which
is constant and has zero gradient (PITFALLS.md #5).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.attribution.explained import observe_module_call
from faceattr.config import TableReader
from faceattr.models.base import VerificationModel, verification_score
from faceattr.params import NoParams, normalised, param, read_params, reference

__all__ = ["AngularSimilarityModule", "AttributionBatch", "AttributionDetails",
           "AttributionMethod", "BatchParams", "MethodInfo", "UnsupportedModelError",
           "VerificationScoreModule", "aggregate_channels"]

Aggregation = Literal["abs_sum", "signed_sum", "map"]


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """What a method is and how it behaves (capability flags, as in captum and sklearn tags).

    Attributes
    ----------
    name : str
        Registry name.
    reference : str
        The paper behind the method.
    aggregation : {"abs_sum", "signed_sum", "map"}
        How (N, C, H, W) relevance becomes an (H, W) map; ``"map"`` for methods that
        produce (H, W) maps directly (controls).
    multiplies_by_inputs, has_convergence_delta, stochastic, is_control : bool
        Capability flags used to select applicable checks.
    explains_score : bool
        The map is computed from the verification score (its gradient, its value under
        perturbations, ...). False for target-independent methods such as attention rollout
        (Abnar & Zuidema 2020), whose map is a function of the probe's attention alone: target
        identity (the explained scalar equals ``score_clean``) does not apply to them, and
        partner sensitivity shows them partner-free. Controls explain nothing either.
    """

    name: str
    reference: str
    aggregation: Aggregation
    multiplies_by_inputs: bool
    has_convergence_delta: bool
    stochastic: bool
    is_control: bool
    explains_score: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class AttributionBatch:
    """The inputs one attribution call sees.

    Attributes
    ----------
    model : VerificationModel
        The model whose score is explained.
    probes : torch.Tensor
        Probe images ``x_a``, float32 (N, 3, H, W) in [0, 1].
    partner_embeddings : torch.Tensor
        ``f(x_b)``, L2-normalised (N, D), detached.
    pair_ids : tuple of str
        One per row; keys the random streams.
    identity_masks : ndarray of bool or None
        Ground-truth identity masks (N, H, W) where the data source has them.
    seed : int
        The run's seed.
    """

    model: VerificationModel
    probes: torch.Tensor
    partner_embeddings: torch.Tensor
    pair_ids: tuple[str, ...]
    identity_masks: NDArray[np.bool_] | None
    seed: int


class UnsupportedModelError(RuntimeError):
    """A method cannot explain this model faithfully (e.g. LRP rules missing for its layers).

    Raised instead of returning a substitute map, so the engine records
    ``error:UnsupportedModelError`` for every pair (PITFALLS.md #3, #6).
    """


@dataclass(frozen=True, slots=True, eq=False)
class AttributionDetails:
    """Maps plus the per-pair facts a method can report about them.

    Attributes
    ----------
    maps : ndarray of float64
        (N, H, W) relevance maps, exactly what :meth:`AttributionMethod.attribute` returns.
    convergence_delta : ndarray of float64 or None
        (N,) signed completeness residual ``sum(phi) - (F(x) - F(baseline))`` for methods whose
        ``info.has_convergence_delta`` is true (for LRP: ``sum(phi) - F(x)``); else ``None``.
        Computed on the channel-resolved attribution, before channel aggregation.
    layer : str or None
        The layer a layer method (Grad-CAM, LayerCAM) read, else ``None``.
    native_resolution : tuple of int or None
        ``(h, w)`` of the layer map before upsampling, else ``None``.
    upsampling : str or None
        How the layer map was brought to the input size (e.g. ``"bilinear"``), else ``None``.
    """

    maps: NDArray[np.float64]
    convergence_delta: NDArray[np.float64] | None = None
    layer: str | None = None
    native_resolution: tuple[int, int] | None = None
    upsampling: str | None = None


class VerificationScoreModule(nn.Module):
    """``x_a -> s(x_a, x_b)`` with the partner embedding fixed, as an ``nn.Module`` (N,).

    Every call is reported to the engine's target-identity observer
    (:mod:`faceattr.attribution.explained`, a forward hook installed here), so the scalar a
    method actually evaluates is checked against the pair's ``score_clean``. A subclass that
    explains a monotone function of the score overrides :meth:`score_of` (and
    ``score_atol``, the rounding that inverse adds).
    """

    score_atol: float = 0.0
    """Rounding :meth:`score_of` adds (none: the identity)."""

    def __init__(self, model: VerificationModel, partner_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.network = model.network
        self._model = model
        self.register_buffer("partner", partner_embeddings.detach())
        self.register_forward_hook(observe_module_call, with_kwargs=True)

    @staticmethod
    def score_of(values: torch.Tensor) -> torch.Tensor:
        """The verification score an explained value stands for (float64): itself."""
        return values

    def forward(self, probes: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
        """Return the verification score of each probe against its partner.

        ``partner`` (N, D) overrides the stored partner embeddings: captum expands
        ``additional_forward_args`` row for row with the inputs it expands (path steps,
        baselines, ablations), so methods pass the partner that way.
        """
        if partner is None:
            stored = self.partner
            assert isinstance(stored, torch.Tensor)
            partner = stored
        return verification_score(self._model.embed(probes), partner)


ANGULAR_CLAMP = 1.0 - 1e-6
"""Cosines are clamped to ``[-ANGULAR_CLAMP, ANGULAR_CLAMP]`` before ``arccos``: its derivative
``-1/sqrt(1 - c^2)`` is infinite at ``c = +-1`` (identical or antipodal embeddings). The clamp
changes the angular similarity by at most ``arccos(1 - 1e-6)/pi ~= 4.5e-4`` and only there."""


class AngularSimilarityModule(VerificationScoreModule):
    """``x_a -> 1 - d_g(f(x_a), f(x_b)) / pi`` with the partner embedding fixed, (N,).

    ``d_g(u, v) = arccos(<u, v>)`` is the geodesic distance on the unit sphere (ARCHITECTURE.md);
    the similarity is 1 for identical embeddings and 0 for antipodal ones, and is a monotone
    function of the cosine score ``s``, so it ranks pairs exactly as ``s`` does.
    """

    def forward(self, probes: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
        """Return the angular similarity of each probe to its partner (``partner`` as in
        :meth:`VerificationScoreModule.forward`)."""
        cosine = torch.clamp(super().forward(probes, partner), -ANGULAR_CLAMP, ANGULAR_CLAMP)
        return 1.0 - torch.arccos(cosine) / torch.pi

    score_atol: float = (1.0 - ANGULAR_CLAMP) + 4.0 * math.pi * 2.0 ** -24
    """The clamp moves the cosine by at most ``1 - ANGULAR_CLAMP``; float32 rounding of the
    angle (a few ulps, ``<= 4 pi u``) moves ``cos`` by at most as much
    (``|d cos| <= |d angle|``)."""

    @staticmethod
    def score_of(values: torch.Tensor) -> torch.Tensor:
        """``cos(pi (1 - v))``: the cosine score of an angular similarity ``v`` (float64)."""
        return torch.cos(torch.pi * (1.0 - values.to(torch.float64)))


def aggregate_channels(relevance: torch.Tensor, aggregation: Aggregation) -> NDArray[np.float64]:
    """Reduce (N, C, H, W) relevance to (N, H, W) float64 maps."""
    if aggregation == "abs_sum":
        reduced = relevance.abs().sum(dim=1)
    elif aggregation == "signed_sum":
        reduced = relevance.sum(dim=1)
    else:
        raise ValueError(f"aggregation {aggregation!r} does not reduce channels")
    return reduced.detach().to(torch.float64).cpu().numpy()


@dataclass(frozen=True, kw_only=True)
class BatchParams:
    """How much work one forward/backward pass takes (it chunks the work, never the maths)."""

    internal_batch_size: int = param(
        64, minimum=1, maximum=1 << 16, unit="rows",
        doc="largest number of model inputs per forward/backward pass (never changes the maps)")


class AttributionMethod(ABC):
    """Base class: one instance per protocol method entry.

    Subclasses set ``info``, declare their protocol parameters once as the frozen dataclass
    ``Params`` (fields made with :func:`faceattr.params.param`; none: :class:`NoParams`) and
    implement :meth:`attribute`. Adding a method = one subclass + one line in the registry.

    Parameters
    ----------
    method_id : str
        The protocol entry's id (keys the random streams).
    params : Params, optional
        The method's parameters; omitted: every default.
    """

    info: ClassVar[MethodInfo]
    Params: ClassVar[type[Any]] = NoParams
    params: object

    def __init__(self, method_id: str, params: object | None = None) -> None:
        if params is None:
            params = self.Params()
        elif type(params) is not self.Params:
            raise TypeError(f"{type(self).__name__} takes {self.Params.__qualname__}, got "
                            f"{type(params).__qualname__}")
        self.method_id = method_id
        self.params = params

    @classmethod
    def choices(cls) -> Mapping[str, Sequence[str]]:
        """Allowed values of parameters known only at run time, by name (none here)."""
        return {}

    @classmethod
    def parameter_reference(cls) -> list[dict[str, Any]]:
        """The protocol reference of ``Params`` (:func:`faceattr.params.reference`)."""
        return reference(cls.Params, allowed=cls.choices())

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Build from a protocol entry, reading ``Params`` strictly (unknown keys refused)."""
        return cls(method_id, read_params(cls.Params, params, allowed=cls.choices()))

    @abstractmethod
    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return relevance maps (N, H, W), float64, finite."""

    def attribute_with_details(self, batch: AttributionBatch) -> AttributionDetails:
        """Return the maps with per-pair details; the default has maps only.

        Methods with a completeness residual or a layer resolution override this; their
        :meth:`attribute` returns ``attribute_with_details(batch).maps``.
        """
        return AttributionDetails(maps=self.attribute(batch))

    def describe(self) -> dict[str, str | bool | float | int]:
        """Identity, flags and every parameter (:func:`faceattr.params.normalised`)."""
        return {"method_id": self.method_id, "name": self.info.name,
                "reference": self.info.reference, "aggregation": self.info.aggregation,
                **normalised(self.params)}
