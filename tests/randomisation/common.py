"""Shared setup of the randomisation tests: synthetic pairs and hand-built results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.ndimage import sobel

from faceattr.attribution import AttributionBatch, AttributionMethod
from faceattr.attribution.base import MethodInfo
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.models.base import VerificationModel
from faceattr.randomisation.layers import cascading_steps
from faceattr.randomisation.similarity import METRICS
from faceattr.randomisation.stage import (
    MethodCurves,
    RandomisationResult,
    RandomisationStep,
    StepSimilarity,
)

N_PAIRS = 4
"""Pairs compared in the shared synthetic run (of a batch of 8)."""


@dataclass(frozen=True)
class PairData:
    batch: AttributionBatch
    partner_images: torch.Tensor


def synthetic_pairs(model: VerificationModel, n_pairs: int, seed: int = 0) -> PairData:
    source = SyntheticPairSource(world_seed=0, n_pairs=n_pairs, genuine_fraction=0.5,
                                 first_identity=1000, sampling_seed=seed)
    pairs = source.pairs()
    probes = [source.load_image(p.image_a) for p in pairs]
    partners = torch.from_numpy(np.stack([source.load_image(p.image_b).image for p in pairs]))
    with torch.no_grad():
        partner_embeddings = model.embed(partners)
    masks = np.stack([p.identity_mask for p in probes])
    batch = AttributionBatch(model=model,
                             probes=torch.from_numpy(np.stack([p.image for p in probes])),
                             partner_embeddings=partner_embeddings,
                             pair_ids=tuple(p.pair_id for p in pairs), identity_masks=masks,
                             seed=seed)
    return PairData(batch=batch, partner_images=partners)


class EdgeMap(AttributionMethod):
    # planted defect: an edge detector of the probe, blind to the model's parameters
    info = MethodInfo(name="edge", reference="planted defect (Sobel magnitude of the input)",
                      aggregation="map", multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        gray = batch.probes.detach().to(torch.float64).mean(dim=1).numpy()
        return np.stack([np.hypot(sobel(g, axis=0), sobel(g, axis=1)) for g in gray])


class Broken(AttributionMethod):
    # a method that fails on every model
    info = MethodInfo(name="broken", reference="planted failure", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        raise RuntimeError("boom")


LAYERS = ("l1", "l2", "l3")


def _step(layers: tuple[str, ...], values: Sequence[float]) -> RandomisationStep:
    return RandomisationStep(layer=layers[-1], layers_randomised=layers,
                             similarities=tuple(StepSimilarity.of(m, values) for m in METRICS))


def hand_result(method_id: str, cascading: Sequence[Sequence[float]],
                independent: Sequence[Sequence[float]], *,
                original_constant: tuple[bool, ...] | None = None) -> RandomisationResult:
    # similarities per step (top-down, one value per pair), the same for every metric
    n_pairs = len(cascading[0])
    cascade = cascading_steps(LAYERS)
    curves = MethodCurves(
        method_id=method_id, method_name=method_id,
        original_constant=original_constant or (False,) * n_pairs,
        cascading=tuple(_step(s, v) for s, v in zip(cascade, cascading, strict=True)),
        independent=tuple(_step((s[-1],), v) for s, v in zip(cascade, independent,
                                                              strict=True)),
        error=None)
    return RandomisationResult(model="m", seed=0,
                               pair_ids=tuple(f"p{i}" for i in range(n_pairs)), layers=LAYERS,
                               topk_frac=0.1, methods=(curves,))
