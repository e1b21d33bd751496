"""The study's own attribution method: RISE of the verification score (Petsiuk et al. 2018).

``phi(x) = E_M[s(x * M, x_b) M] / E[M]``: random low-resolution binary masks ``M`` (upsampled),
each weighted by the verification score of the masked probe against the partner. Every mask is
drawn from a generator keyed by (seed, pair_id, method id) — never a global RNG — so a pair's
map does not depend on the other pairs of its batch or on the method order.

``invert = true`` plants a defect (the map is negated: the least relevant pixels ranked first);
the example's defect protocol declares it and its gate must fail.

References
----------
V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

import faceattr
from faceattr.rng import torch_generator


@dataclass(frozen=True)
class RiseParams:
    """The method's parameters, declared once (faceattr reads, documents and hashes them)."""

    n_masks: int = faceattr.param(64, minimum=1, maximum=4096, unit="masks",
                                  doc="random masks per pair")
    cells: int = faceattr.param(8, minimum=2, maximum=64, unit="cells per side",
                                doc="resolution of the mask grid before upsampling")
    keep: float = faceattr.param(0.5, minimum=0.05, maximum=0.95, doc="share of cells kept")
    invert: bool = faceattr.param(False, doc="planted defect: negate the map")


class SimilarityRISE(faceattr.AttributionMethod):
    """RISE maps of the pair's verification score (see the module docstring)."""

    info = faceattr.MethodInfo(name="similarity_rise", reference="Petsiuk et al. 2018",
                               aggregation="map", multiplies_by_inputs=False,
                               has_convergence_delta=False, stochastic=True, is_control=False)
    Params: ClassVar[type[RiseParams]] = RiseParams

    def attribute(self, batch: faceattr.AttributionBatch) -> NDArray[np.float64]:
        """Return the RISE maps (N, H, W)."""
        p: RiseParams = self.params
        height, width = batch.probes.shape[-2:]
        maps = []
        for row, pair_id in enumerate(batch.pair_ids):
            generator = torch_generator(batch.seed, pair_id, self.method_id)
            grid = (torch.rand((p.n_masks, 1, p.cells, p.cells), generator=generator)
                    < p.keep).to(batch.probes.dtype)
            masks = torch.nn.functional.interpolate(grid, size=(height, width),
                                                    mode="bilinear", align_corners=False)
            # the pair's verification score, through faceattr's score module: the gate checks
            # that the scalar explained at the probe is the pair's score (target identity)
            score = faceattr.VerificationScoreModule(batch.model,
                                                     batch.partner_embeddings[row:row + 1])
            with torch.no_grad():
                masked = batch.probes[row:row + 1] * masks
                scores = score(masked, batch.partner_embeddings[row:row + 1].expand(
                    masked.shape[0], -1))
            relevance = (scores[:, None, None] * masks[:, 0]).mean(0) / masks.mean()
            maps.append(relevance.double().numpy())
        out = np.stack(maps)
        return -out if p.invert else out
