"""Control maps with known answers: oracle, noisy oracle, inverted, random, constant.

The controls make the falsification test's sign convention checkable in every run
(PITFALLS.md #13): the oracle must be falsified rarely, its inverse almost always, a random
map at chance, and a constant map is untestable (every pair trivial).

Degraded oracles (blurred with ``sigma_px``, displaced by ``shift_y_px``/``shift_x_px``, or
blended with noise in :class:`NoisyOracleMap`) make maps of every intermediate ground-truth
quality: the dose-response family that checks the test ranks maps the way the truth does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter, shift

from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.config import TableReader
from faceattr.params import param
from faceattr.rng import numpy_generator

__all__ = ["ConstantMap", "InvertedMap", "NoisyOracleMap", "OracleMap", "RandomMap"]


class MissingGroundTruthError(ValueError):
    """The data source has no identity masks, so no oracle map exists."""


@dataclass(frozen=True, kw_only=True)
class SmoothingParams:
    """Smoothing of the identity masks."""

    sigma_px: float = param(1.5, minimum=0.0, maximum=16.0, unit="px",
                            doc="standard deviation of the Gaussian smoothing of the masks")


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

    Parameters
    ----------
    method_id : str
    params : OracleMap.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    The known-answer control of synthetic benchmarks, e.g. L. Arras, A. Osman, W. Samek,
    "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network
    explanations", Information Fusion 81, 2022.
    """

    info = MethodInfo(name="oracle", reference="Arras et al. 2022 (ground-truth mask)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    @dataclass(frozen=True, kw_only=True)
    class Params(SmoothingParams):
        """The degradation: smoothing and displacement of the masks."""

        shift_y_px: float = param(0.0, minimum=-32.0, maximum=32.0, unit="px",
                                  doc="vertical displacement of the masks (zeros enter)")
        shift_x_px: float = param(0.0, minimum=-32.0, maximum=32.0, unit="px",
                                  doc="horizontal displacement of the masks (zeros enter)")

    params: Params

    def __init__(self, method_id: str, params: OracleMap.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the (shifted) smoothed masks (N, H, W)."""
        return _degraded_masks(batch, self.params.sigma_px,
                               (self.params.shift_y_px, self.params.shift_x_px))


def _uniform_maps(batch: AttributionBatch, method_id: str) -> NDArray[np.float64]:
    height, width = batch.probes.shape[-2:]
    maps = [numpy_generator(batch.seed, pair_id, batch.model.name, method_id, "map")
            .random((height, width)) for pair_id in batch.pair_ids]
    return np.stack(maps)


class NoisyOracleMap(AttributionMethod):
    """The oracle blended with seeded uniform noise: ``(1 - w) * oracle / max + w * U``.

    ``noise_weight`` ``w`` in (0, 1] sets the dose: ``w -> 0`` is the oracle, ``w = 1`` the
    random control. The noise stream is ``(seed, pair_id, model, method, "map")``.

    Parameters
    ----------
    method_id : str
    params : NoisyOracleMap.Params
        See ``Params`` (``noise_weight`` has no default).
    """

    info = MethodInfo(name="noisy_oracle", reference="dose-response control (oracle + noise)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    @dataclass(frozen=True, kw_only=True)
    class Params(SmoothingParams):
        """The dose of noise and the oracle's smoothing."""

        noise_weight: float = param(fraction=True, open_low=True,
                                    doc="weight w of the uniform noise: 0+ oracle, 1 random")

    params: Params

    def __init__(self, method_id: str, params: NoisyOracleMap.Params) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the blended maps (N, H, W)."""
        weight = self.params.noise_weight
        oracle = _degraded_masks(batch, self.params.sigma_px, (0.0, 0.0))
        peak = oracle.reshape(oracle.shape[0], -1).max(axis=1)
        scaled = oracle / np.where(peak > 0, peak, 1.0)[:, None, None]
        blended: NDArray[np.float64] = ((1.0 - weight) * scaled
                                        + weight * _uniform_maps(batch, self.method_id))
        return blended


class InvertedMap(AttributionMethod):
    """The negation ``-phi`` of another method's map: a negative control (FR near 1).

    ``of`` names one of :attr:`bases` (name -> method class; empty here). This module does
    not import the registry, which imports it: the registry's ``"inverted"`` entry is a
    subclass whose ``bases`` are every other registered method. The inverted method is built
    with its defaults.

    Parameters
    ----------
    method_id : str
    params : InvertedMap.Params
        See ``Params`` (``of`` has no default).
    """

    info = MethodInfo(name="inverted", reference="negative control (sign-flipped map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)
    bases: ClassVar[Mapping[str, type[AttributionMethod]]] = MappingProxyType({})

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The method to invert."""

        of: str = param(doc="registry name of the method whose map is negated (its defaults)")

    params: Params

    def __init__(self, method_id: str, params: InvertedMap.Params) -> None:
        super().__init__(method_id, params)
        name = params.of
        if name not in self.bases:
            raise ValueError(f"{method_id}: of = {name!r} is not one of {sorted(self.bases)}")
        self.base = self.bases[name].from_params(f"{method_id}.base", TableReader({}, name))

    @classmethod
    def choices(cls) -> Mapping[str, Sequence[str]]:
        """``of`` names one of :attr:`bases`."""
        return {"of": sorted(cls.bases)}

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``-phi`` of the base method."""
        return -self.base.attribute(batch)


class RandomMap(AttributionMethod):
    """I.i.d. uniform relevance per pixel from the stream ``(seed, pair_id, model, method)``:
    a map that ignores the model, falsified at chance.

    With ``smooth_sigma_px > 0`` the noise is Gaussian-smoothed into blobs: the blur control
    (removal tests can favour smooth maps, Song et al.; a blurry map that knows nothing must
    still be falsified at chance).

    Parameters
    ----------
    method_id : str
    params : RandomMap.Params, optional
        See ``Params`` (defaults when omitted).
    """

    info = MethodInfo(name="random", reference="chance control (seeded uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    @dataclass(frozen=True, kw_only=True)
    class Params:
        """The blur control's smoothing."""

        smooth_sigma_px: float = param(0.0, minimum=0.0, maximum=16.0, unit="px",
                                       doc="Gaussian smoothing of the noise into blobs (0: none)")

    params: Params

    def __init__(self, method_id: str, params: RandomMap.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return one seeded uniform (optionally smoothed) map per pair (N, H, W)."""
        maps = _uniform_maps(batch, self.method_id)
        sigma = self.params.smooth_sigma_px
        if sigma > 0:
            maps = np.stack([gaussian_filter(m, sigma=sigma, mode="reflect") for m in maps])
        return maps


class ConstantMap(AttributionMethod):
    """The same value at every pixel: it cannot rank pixels, so every pair is trivial."""

    info = MethodInfo(name="constant", reference="untestable control (uniform map)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return all-ones maps (N, H, W)."""
        return np.ones((batch.probes.shape[0], *batch.probes.shape[-2:]), dtype=np.float64)
