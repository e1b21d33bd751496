"""The research code's loop, kept as a yardstick: one unbatched forward per counterfactual.

The research code built each counterfactual on its own and sent it through the model alone
(batch of one), and re-embedded the clean probe for every pair and method: ``2 K + 1``
forwards per pair per method. :func:`reference_drifts` does exactly that, drawing every
counterfactual from the same keyed stream ``(seed, pair_id, model, method, region, k)`` as
:func:`faceattr.falsification.falsify_maps`, so both do identical work and return the same
drifts (up to float32 rounding: a batch of one and a batch of 64 round differently on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.bench.common import Workload
from faceattr.falsification.counterfactuals import counterfactuals
from faceattr.falsification.regions import Regions
from faceattr.rng import numpy_generator

__all__ = ["ReferenceResult", "reference_drifts"]


@dataclass(frozen=True, slots=True)
class ReferenceResult:
    """Drifts of one pair from the reference loop (``None`` arrays for a trivial map).

    Attributes
    ----------
    pair_id : str
    drift_high_rad, drift_low_rad : ndarray (K,) or None
        Geodesic drifts of the counterfactuals of ``S_high`` / ``S_low``, radians.
    score_drop_high, score_drop_low : ndarray (K,) or None
        Verification-score drops ``s(x_a, x_b) - s(x'_a, x_b)``.
    """

    pair_id: str
    drift_high_rad: NDArray[np.float64] | None
    drift_low_rad: NDArray[np.float64] | None
    score_drop_high: NDArray[np.float64] | None
    score_drop_low: NDArray[np.float64] | None


def _embed_one(workload: Workload, image: NDArray[np.float32]) -> NDArray[np.float64]:
    with torch.no_grad():
        embedding = workload.model.embed(torch.from_numpy(image)[None])
    return embedding[0].numpy().astype(np.float64)


def reference_drifts(workload: Workload) -> list[ReferenceResult]:
    """Run the falsification drifts the research code's way: one forward per image.

    Parameters
    ----------
    workload : Workload
        The same workload the engine is timed on. Its precomputed probe embeddings are
        ignored (the research code re-embedded the clean probe); partner embeddings are used.

    Returns
    -------
    list of ReferenceResult
        One per pair, in input order.
    """
    settings = workload.settings
    inputs = workload.inputs
    results: list[ReferenceResult] = []
    for i, pair in enumerate(inputs.pairs):
        probe = inputs.probes[i]
        clean = _embed_one(workload, probe)
        partner = inputs.partner_embeddings[i].astype(np.float64)
        score_clean = float(clean @ partner)
        split = settings.split(workload.maps[i])
        if not isinstance(split, Regions):
            results.append(ReferenceResult(pair.pair_id, None, None, None, None))
            continue
        drifts: dict[str, list[float]] = {"high": [], "low": []}
        drops: dict[str, list[float]] = {"high": [], "low": []}
        for region, idx in (("high", split.high_idx), ("low", split.low_idx)):
            for k in range(settings.k_per_region):
                rng = numpy_generator(workload.seed, pair.pair_id, workload.model.name,
                                      workload.method_id, region, k)
                image = counterfactuals(probe, idx, fill=settings.fill,
                                        perturbation_sigma=settings.perturbation_sigma,
                                        rngs=[rng], blur_sigma_px=settings.blur_sigma_px)[0]
                embedding = _embed_one(workload, image)
                drifts[region].append(float(np.arccos(np.clip(embedding @ clean, -1.0, 1.0))))
                drops[region].append(score_clean - float(embedding @ partner))
        results.append(ReferenceResult(
            pair.pair_id, np.array(drifts["high"]), np.array(drifts["low"]),
            np.array(drops["high"]), np.array(drops["low"])))
    return results
