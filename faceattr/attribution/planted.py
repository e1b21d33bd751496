"""A planted known answer for stratified analyses: the oracle, failing on one kind of probe only.

:class:`NuisanceDegradedOracle` is the ground-truth oracle map on every probe except those
whose *generated* nuisance has a declared flag set (e.g. an occluder), where it is a seeded
uniform random map. A stratified analysis of its verdicts must find that stratum, with the
direction "fails more there", and no other (``validation/protocols/studies/
strata_planted.toml``). Not a registered method: protocols name it by import path,
``faceattr.attribution.planted:NuisanceDegradedOracle``.

The method knows a probe's nuisance by recognising it: the probes of a synthetic pair source
are view 0 of identities in ``[first_identity, first_identity + n_identities)``, each rendered
once and looked up by the SHA-256 of its float32 bytes; a probe not found is an error on that
pair, never a guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.attribution.controls import OracleMap, SmoothingParams
from faceattr.data.synthetic import Nuisance, synthetic_face
from faceattr.errors import InputError
from faceattr.params import param
from faceattr.rng import numpy_generator

__all__ = ["FLAGS", "NuisanceDegradedOracle"]

#: The nuisance flags the oracle may be degraded on.
FLAGS: Mapping[str, Callable[[Nuisance], bool]] = MappingProxyType({
    "occluder": lambda n: n.n_occluders > 0,
    "hair": lambda n: n.hair,
    "glasses": lambda n: n.glasses,
    "earring": lambda n: n.earring,
    "moles": lambda n: n.n_moles > 0,
})


@lru_cache(maxsize=8)
def _nuisance_by_probe(world_seed: int, difficulty: int, first_identity: int,
                       n_identities: int) -> Mapping[str, Nuisance]:
    """SHA-256 of view 0's float32 bytes -> its nuisance, for every identity in the range."""
    table = {}
    for identity in range(first_identity, first_identity + n_identities):
        face = synthetic_face(world_seed, identity, 0, difficulty)
        assert face.nuisance is not None  # render_face always records it
        table[hashlib.sha256(face.image.tobytes()).hexdigest()] = face.nuisance
    return MappingProxyType(table)


class NuisanceDegradedOracle(AttributionMethod):
    """The oracle map, replaced by a uniform random map on probes with a nuisance flag set.

    ``phi = G_sigma * 1[identity region]`` (:class:`~faceattr.attribution.controls.OracleMap`)
    unless the probe's generated nuisance has ``flag`` (an occluder by default): then ``phi``
    is uniform noise from the stream ``(seed, pair_id, model, method, "map")``.

    Parameters
    ----------
    method_id : str
    params : NuisanceDegradedOracle.Params
        The flag and the synthetic world the probes come from (as the protocol's ``[data]``).

    References
    ----------
    A planted-effect control in the sense of a known-answer test: the oracle of Arras et al.,
    "CLEVR-XAI", Information Fusion 81, 2022, degraded on a known subset of inputs.
    """

    info = MethodInfo(name="nuisance_degraded_oracle",
                      reference="planted control: oracle, random on flagged probes",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=True, is_control=True)

    @dataclass(frozen=True, kw_only=True)
    class Params(SmoothingParams):
        """The flag and the world whose view-0 probes are recognised."""

        flag: str = param("occluder", allowed=tuple(FLAGS),
                          doc="nuisance flag of the probes on which the map is random")
        world_seed: int = param(minimum=0, doc="the synthetic world's seed ([data] world_seed)")
        difficulty: int = param(0, minimum=0, maximum=2,
                                doc="the world's difficulty level ([data] difficulty)")
        first_identity: int = param(minimum=0, doc="first identity of the pair source")
        n_identities: int = param(minimum=1, maximum=1_000_000,
                                  doc="identities searched: 4 x [data] n_pairs")

    params: Params

    def __init__(self, method_id: str, params: NuisanceDegradedOracle.Params) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """The oracle's maps (N, H, W), random where the probe has the flag."""
        p = self.params
        oracle = OracleMap(f"{self.method_id}@oracle",
                           OracleMap.Params(sigma_px=p.sigma_px)).attribute(batch)
        table = _nuisance_by_probe(p.world_seed, p.difficulty, p.first_identity,
                                   p.n_identities)
        probes = batch.probes.detach().cpu().numpy().astype(np.float32, copy=False)
        maps = oracle.copy()
        for row, pair_id in enumerate(batch.pair_ids):
            digest = hashlib.sha256(np.ascontiguousarray(probes[row]).tobytes()).hexdigest()
            nuisance = table.get(digest)
            if nuisance is None:
                last = p.first_identity + p.n_identities - 1
                raise InputError(f"{self.method_id}: probe of pair {pair_id} is not view 0 of "
                                 f"identities {p.first_identity}..{last} of world "
                                 f"{p.world_seed} (level {p.difficulty}); set the method's "
                                 "world to the protocol's [data]")
            if FLAGS[p.flag](nuisance):
                maps[row] = numpy_generator(batch.seed, pair_id, batch.model.name,
                                            self.method_id, "map").random(maps.shape[1:])
        return maps
