"""Control maps with known answers: oracle, inverted, random, constant.

The controls make the falsification test's sign convention checkable in every run
(PITFALLS.md #13): the oracle must be falsified rarely, its inverse almost always, a random
map at chance, and a constant map is untestable (every pair trivial).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.config import TableReader
from faceattr.rng import numpy_generator

__all__ = ["ConstantMap", "InvertedMap", "OracleMap", "RandomMap"]


class MissingGroundTruthError(ValueError):
    """The data source has no identity masks, so no oracle map exists."""


class OracleMap(AttributionMethod):
    """The ground-truth identity mask, smoothed so that it ranks every pixel near the mask.

    ``phi = G_sigma * 1[identity region]`` (Gaussian smoothing, ``sigma_px``): relevance is
    highest inside the identity regions and decays with distance from them.

    References
    ----------
    The known-answer control of synthetic benchmarks, e.g. L. Arras, A. Osman, W. Samek,
    "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network
    explanations", Information Fusion 81, 2022.
    """

    info = MethodInfo(name="oracle", reference="Arras et al. 2022 (ground-truth mask)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def __init__(self, method_id: str, sigma_px: float = 1.5) -> None:
        super().__init__(method_id)
        self.sigma_px = sigma_px

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``sigma_px`` (default 1.5)."""
        sigma_px = params.number("sigma_px", default=1.5, minimum=0.0, maximum=16.0)
        params.finish()
        return cls(method_id, sigma_px)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the smoothed masks (N, H, W)."""
        if batch.identity_masks is None:
            raise MissingGroundTruthError("the data source provides no identity masks")
        masks = batch.identity_masks.astype(np.float64)
        return np.stack([gaussian_filter(m, sigma=self.sigma_px, mode="constant") for m in masks])


class InvertedMap(AttributionMethod):
    """The negation ``-phi`` of another method's map: a negative control (FR near 1)."""

    info = MethodInfo(name="inverted", reference="negative control (sign-flipped map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def __init__(self, method_id: str, base: AttributionMethod) -> None:
        super().__init__(method_id)
        self.base = base

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``of`` — the registry name of the method to invert (built with defaults)."""
        from faceattr.attribution.registry import METHODS

        name = params.text("of", allowed=sorted(n for n in METHODS if n != "inverted"))
        params.finish()
        base = METHODS[name].from_params(f"{method_id}.base", TableReader({}, name))
        return cls(method_id, base)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``-phi`` of the base method."""
        return -self.base.attribute(batch)

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the inverted method's name."""
        return {**super().describe(), "of": self.base.info.name}


class RandomMap(AttributionMethod):
    """I.i.d. uniform relevance per pixel from the stream ``(seed, pair_id, model, method)``:
    a map that ignores the model, falsified at chance."""

    info = MethodInfo(name="random", reference="chance control (seeded uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return one seeded uniform map per pair (N, H, W)."""
        height, width = batch.probes.shape[-2:]
        maps = [numpy_generator(batch.seed, pair_id, batch.model.name, self.method_id, "map")
                .random((height, width)) for pair_id in batch.pair_ids]
        return np.stack(maps)


class ConstantMap(AttributionMethod):
    """The same value at every pixel: it cannot rank pixels, so every pair is trivial."""

    info = MethodInfo(name="constant", reference="untestable control (uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return all-ones maps (N, H, W)."""
        return np.ones((batch.probes.shape[0], *batch.probes.shape[-2:]), dtype=np.float64)
