"""Gradient methods from captum, explaining the verification score."""

from __future__ import annotations

import numpy as np
from captum.attr import Saliency as CaptumSaliency
from numpy.typing import NDArray

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionMethod,
    MethodInfo,
    VerificationScoreModule,
    aggregate_channels,
)

__all__ = ["Saliency"]


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
