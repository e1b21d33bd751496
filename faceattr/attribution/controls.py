"""Control maps with known answers: oracle, noisy oracle, inverted, random, constant.

The controls make the falsification test's sign convention checkable in every run
(PITFALLS.md #13): the oracle must be falsified rarely, its inverse almost always, a random
map at chance, and a constant map is untestable (every pair trivial).

Degraded oracles (blurred with ``sigma_px``, displaced by ``shift_y_px``/``shift_x_px``, or
blended with noise in :class:`NoisyOracleMap`) make maps of every intermediate ground-truth
quality: the dose-response family that checks the test ranks maps the way the truth does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter, shift

from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.config import TableReader
from faceattr.rng import numpy_generator

__all__ = ["ConstantMap", "InvertedMap", "NoisyOracleMap", "OracleMap", "RandomMap"]


class MissingGroundTruthError(ValueError):
    """The data source has no identity masks, so no oracle map exists."""


def _degraded_masks(batch: AttributionBatch, sigma_px: float,
                    shift_px: tuple[float, float]) -> NDArray[np.float64]:
    """The identity masks displaced by ``shift_px`` (zeros enter) and Gaussian-smoothed."""
    if batch.identity_masks is None:
        raise MissingGroundTruthError("the data source provides no identity masks")
    masks = batch.identity_masks.astype(np.float64)
    if shift_px != (0.0, 0.0):
        masks = np.stack([shift(m, shift_px, order=0, mode="constant", cval=0.0) for m in masks])
    return np.stack([gaussian_filter(m, sigma=sigma_px, mode="constant") for m in masks])


class OracleMap(AttributionMethod):
    """The ground-truth identity mask, smoothed so that it ranks every pixel near the mask.

    ``phi = G_sigma * 1[identity region shifted by (dy, dx)]`` (Gaussian smoothing,
    ``sigma_px``; the shift is 0 for the oracle proper): relevance is highest inside the
    identity regions and decays with distance from them. Larger ``sigma_px`` or a shift give
    degraded maps of measurable quality.

    References
    ----------
    The known-answer control of synthetic benchmarks, e.g. L. Arras, A. Osman, W. Samek,
    "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network
    explanations", Information Fusion 81, 2022.
    """

    info = MethodInfo(name="oracle", reference="Arras et al. 2022 (ground-truth mask)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def __init__(self, method_id: str, sigma_px: float = 1.5,
                 shift_px: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__(method_id)
        self.sigma_px = sigma_px
        self.shift_px = shift_px

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``sigma_px`` (default 1.5) and ``shift_y_px``/``shift_x_px`` (default 0)."""
        sigma_px = params.number("sigma_px", default=1.5, minimum=0.0, maximum=16.0)
        shift_px = (params.number("shift_y_px", default=0.0, minimum=-32.0, maximum=32.0),
                    params.number("shift_x_px", default=0.0, minimum=-32.0, maximum=32.0))
        params.finish()
        return cls(method_id, sigma_px, shift_px)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the (shifted) smoothed masks (N, H, W)."""
        return _degraded_masks(batch, self.sigma_px, self.shift_px)

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the degradation parameters."""
        return {**super().describe(), "sigma_px": self.sigma_px,
                "shift_y_px": self.shift_px[0], "shift_x_px": self.shift_px[1]}


def _uniform_maps(batch: AttributionBatch, method_id: str) -> NDArray[np.float64]:
    height, width = batch.probes.shape[-2:]
    maps = [numpy_generator(batch.seed, pair_id, batch.model.name, method_id, "map")
            .random((height, width)) for pair_id in batch.pair_ids]
    return np.stack(maps)


class NoisyOracleMap(AttributionMethod):
    """The oracle blended with seeded uniform noise: ``(1 - w) * oracle / max + w * U``.

    ``noise_weight`` ``w`` in (0, 1] sets the dose: ``w -> 0`` is the oracle, ``w = 1`` the
    random control. The noise stream is ``(seed, pair_id, model, method, "map")``.
    """

    info = MethodInfo(name="noisy_oracle", reference="dose-response control (oracle + noise)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    def __init__(self, method_id: str, noise_weight: float, sigma_px: float = 1.5) -> None:
        super().__init__(method_id)
        self.noise_weight = noise_weight
        self.sigma_px = sigma_px

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``noise_weight`` (required, in (0, 1]) and ``sigma_px`` (default 1.5)."""
        weight = params.fraction("noise_weight", open_low=True)
        sigma_px = params.number("sigma_px", default=1.5, minimum=0.0, maximum=16.0)
        params.finish()
        return cls(method_id, weight, sigma_px)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the blended maps (N, H, W)."""
        oracle = _degraded_masks(batch, self.sigma_px, (0.0, 0.0))
        peak = oracle.reshape(oracle.shape[0], -1).max(axis=1)
        scaled = oracle / np.where(peak > 0, peak, 1.0)[:, None, None]
        blended: NDArray[np.float64] = ((1.0 - self.noise_weight) * scaled
                                        + self.noise_weight * _uniform_maps(batch, self.method_id))
        return blended

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the dose."""
        return {**super().describe(), "noise_weight": self.noise_weight,
                "sigma_px": self.sigma_px}


class InvertedMap(AttributionMethod):
    """The negation ``-phi`` of another method's map: a negative control (FR near 1).

    ``of`` names one of :attr:`bases` (name -> method class; empty here). This module does
    not import the registry, which imports it: the registry's ``"inverted"`` entry is a
    subclass whose ``bases`` are every other registered method.
    """

    info = MethodInfo(name="inverted", reference="negative control (sign-flipped map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)
    bases: ClassVar[Mapping[str, type[AttributionMethod]]] = MappingProxyType({})

    def __init__(self, method_id: str, base: AttributionMethod) -> None:
        super().__init__(method_id)
        self.base = base

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``of`` — the registry name of the method to invert (built with defaults)."""
        name = params.text("of", allowed=sorted(cls.bases))
        params.finish()
        base = cls.bases[name].from_params(f"{method_id}.base", TableReader({}, name))
        return cls(method_id, base)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``-phi`` of the base method."""
        return -self.base.attribute(batch)

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the inverted method's name."""
        return {**super().describe(), "of": self.base.info.name}


class RandomMap(AttributionMethod):
    """I.i.d. uniform relevance per pixel from the stream ``(seed, pair_id, model, method)``:
    a map that ignores the model, falsified at chance.

    With ``smooth_sigma_px > 0`` the noise is Gaussian-smoothed into blobs: the blur control
    (removal tests can favour smooth maps, Song et al.; a blurry map that knows nothing must
    still be falsified at chance).
    """

    info = MethodInfo(name="random", reference="chance control (seeded uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    def __init__(self, method_id: str, smooth_sigma_px: float = 0.0) -> None:
        super().__init__(method_id)
        self.smooth_sigma_px = smooth_sigma_px

    @classmethod
    def from_params(cls, method_id: str, params: TableReader) -> AttributionMethod:
        """Read ``smooth_sigma_px`` (default 0: no smoothing)."""
        sigma = params.number("smooth_sigma_px", default=0.0, minimum=0.0, maximum=16.0)
        params.finish()
        return cls(method_id, sigma)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return one seeded uniform (optionally smoothed) map per pair (N, H, W)."""
        maps = _uniform_maps(batch, self.method_id)
        if self.smooth_sigma_px > 0:
            maps = np.stack([gaussian_filter(m, sigma=self.smooth_sigma_px, mode="reflect")
                             for m in maps])
        return maps

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the smoothing width."""
        return {**super().describe(), "smooth_sigma_px": self.smooth_sigma_px}


class ConstantMap(AttributionMethod):
    """The same value at every pixel: it cannot rank pixels, so every pair is trivial."""

    info = MethodInfo(name="constant", reference="untestable control (uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return all-ones maps (N, H, W)."""
        return np.ones((batch.probes.shape[0], *batch.probes.shape[-2:]), dtype=np.float64)
