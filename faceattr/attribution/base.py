"""The attribution-method interface: every method explains the verification score.

The explained scalar is ``s(x_a, x_b) = <f(x_a), f(x_b)>`` as a function of the probe ``x_a``
with the partner embedding ``f(x_b)`` fixed — never the norm of a normalised embedding, which
is constant and has zero gradient (PITFALLS.md #5).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.config import TableReader
from faceattr.models.base import VerificationModel, verification_score

__all__ = ["AttributionBatch", "AttributionMethod", "MethodInfo", "VerificationScoreModule",
           "aggregate_channels"]

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
    """

    name: str
    reference: str
    aggregation: Aggregation
    multiplies_by_inputs: bool
    has_convergence_delta: bool
    stochastic: bool
    is_control: bool


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


class VerificationScoreModule(nn.Module):
    """``x_a -> s(x_a, x_b)`` with the partner embedding fixed, as an ``nn.Module`` (N,)."""

    def __init__(self, model: VerificationModel, partner_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.network = model.network
        self._model = model
        self.register_buffer("partner", partner_embeddings.detach())

    def forward(self, probes: torch.Tensor) -> torch.Tensor:
        """Return the verification score of each probe against its partner."""
        partner = self.partner
        assert isinstance(partner, torch.Tensor)
        return verification_score(self._model.embed(probes), partner)


def aggregate_channels(relevance: torch.Tensor, aggregation: Aggregation) -> NDArray[np.float64]:
    """Reduce (N, C, H, W) relevance to (N, H, W) float64 maps."""
    if aggregation == "abs_sum":
        reduced = relevance.abs().sum(dim=1)
    elif aggregation == "signed_sum":
        reduced = relevance.sum(dim=1)
    else:
        raise ValueError(f"aggregation {aggregation!r} does not reduce channels")
    return reduced.detach().to(torch.float64).cpu().numpy()


class AttributionMethod(ABC):
    """Base class: one instance per protocol method entry.

    Subclasses set ``info`` and implement :meth:`attribute`; they read their parameters in
    :meth:`from_params`. Adding a method = one subclass + one line in the registry.
    """

    info: ClassVar[MethodInfo]

    def __init__(self, method_id: str) -> None:
        self.method_id = method_id

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Build from a protocol entry; methods without parameters accept none."""
        params.finish()
        return cls(method_id)

    @abstractmethod
    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return relevance maps (N, H, W), float64, finite."""

    def describe(self) -> dict[str, str | bool | float | int]:
        """Parameters and flags for provenance."""
        return {"method_id": self.method_id, "name": self.info.name,
                "reference": self.info.reference, "aggregation": self.info.aggregation}
