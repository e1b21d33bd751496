"""(a) Engine throughput vs the model's raw batched forward; (b) speed-up over the reference loop.

Cases timed in interleaved repetitions on one workload (``n_pairs`` pairs, ``K`` draws per
region, ``2 K n_pairs`` counterfactual images):

``engine``
    :func:`faceattr.falsification.falsify_maps` (regions, counterfactuals, batched forward,
    verdicts).
``raw_forward``
    ``model.embed`` in inference mode on as many random images of the same shape, in chunks
    of ``forward_chunk`` rows: the hardware's limit for this workload.
``raw_forward_unbatched``
    The same images one at a time (batch of one): ``raw_batched_vs_unbatched`` is the most
    any batching can gain over the reference loop on this machine, the ceiling of (b).
``construction``
    The engine's counterfactual construction alone (regions, map statistics, keyed draws,
    fills), without any forward: where the non-forward time goes.
``engine_end_to_end``
    The clean probes' batched embedding plus ``engine``: the same output as ``reference``.
``reference``
    :func:`faceattr.bench.reference.reference_drifts`: one unbatched forward per image.

(a) is ``throughput(engine) / throughput(raw_forward)`` in images per second (target >= 0.8);
(b) is ``time(reference) / time(engine_end_to_end)`` (target >= 20).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.bench.common import (
    Workload,
    interleaved,
    make_workload,
    random_images,
    raw_forward,
    throughput_ratio,
)
from faceattr.bench.reference import reference_drifts
from faceattr.falsification import falsify_maps
from faceattr.falsification.counterfactuals import counterfactuals
from faceattr.falsification.mapstats import map_stats
from faceattr.falsification.regions import Regions
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.rng import numpy_generator

__all__ = ["ENGINE_TARGET", "REFERENCE_TARGET", "bench_engine", "construct_counterfactuals"]

ENGINE_TARGET: float = 0.8
"""(a): engine images/s over raw batched forward images/s."""

REFERENCE_TARGET: float = 20.0
"""(b): reference-loop time over engine time on identical work."""


def construct_counterfactuals(workload: Workload) -> list[NDArray[np.float32]]:
    """The engine's counterfactual construction, exactly as ``falsify_maps`` does it.

    Regions, map statistics, one keyed generator per draw and the fills; no forward pass.
    """
    settings, inputs, k = workload.settings, workload.inputs, workload.settings.k_per_region
    images: list[NDArray[np.float32]] = []
    for i, pair in enumerate(inputs.pairs):
        split = settings.split(workload.maps[i])
        map_stats(workload.maps[i])
        if not isinstance(split, Regions):
            continue
        for region, idx in (("high", split.high_idx), ("low", split.low_idx)):
            rngs = [numpy_generator(workload.seed, pair.pair_id, workload.model.name,
                                    workload.method_id, region, draw) for draw in range(k)]
            images.append(counterfactuals(inputs.probes[i], idx, fill=settings.fill,
                                          perturbation_sigma=settings.perturbation_sigma,
                                          rngs=rngs, blur_sigma_px=settings.blur_sigma_px))
    return images


def bench_engine(model: VerificationModel, *, n_pairs: int, k: int, forward_chunk: int,
                 repeats: int, with_reference: bool = True) -> dict[str, Any]:
    """Measure (a) and (b) for one model on one workload.

    Parameters
    ----------
    model : VerificationModel
    n_pairs, k, forward_chunk : int
        Workload size and rows per forward. ``2 k n_pairs`` should be a multiple of
        ``forward_chunk`` so neither side pays for padding (the padded fraction is reported).
    repeats : int
        Interleaved timed repetitions (one untimed warm-up round first).
    with_reference : bool
        Also time the reference loop (b).

    Returns
    -------
    dict
        Workload sizes, per-case times and the ratios.
    """
    workload = make_workload(model, n_pairs=n_pairs, k=k, forward_chunk=forward_chunk,
                             tag="engine")
    n_images = workload.n_counterfactuals
    raw_images = torch.from_numpy(random_images(n_images, model.input_size_px, "raw",
                                                model.name))
    probes = torch.from_numpy(workload.inputs.probes)

    def engine() -> None:
        falsify_maps(model, workload.inputs, workload.maps, method_id=workload.method_id,
                     seed=workload.seed, settings=workload.settings)

    def end_to_end() -> None:
        # a run embeds all its clean images at once, so it pads at most one chunk per run:
        # a chunk no larger than the probe count keeps padding out of this small workload
        embed_batched(model, probes, chunk_size=min(forward_chunk, n_pairs))
        engine()

    cases: dict[str, Callable[[], object]] = {
        "engine": engine,
        "raw_forward": lambda: raw_forward(model, raw_images, forward_chunk),
        "raw_forward_unbatched": lambda: raw_forward(model, raw_images, 1),
        "construction": lambda: construct_counterfactuals(workload),
        "engine_end_to_end": end_to_end}
    if with_reference:
        cases["reference"] = lambda: reference_drifts(workload)
    times = interleaved(cases, repeats=repeats, desc=f"engine {model.name}")
    padded = -n_images % forward_chunk
    result: dict[str, Any] = {
        "model": model.name, "input_size_px": model.input_size_px, "n_pairs": n_pairs,
        "k_per_region": k, "forward_chunk": forward_chunk,
        "n_counterfactual_images": n_images, "padded_rows_fraction": padded / (n_images + padded),
        "repeats": repeats, "times": {name: t.to_json() for name, t in times.items()},
        "engine_images_per_s": n_images / times["engine"].median_s,
        "raw_forward_images_per_s": n_images / times["raw_forward"].median_s,
        "engine_vs_raw_forward": throughput_ratio(times["engine"], n_images,
                                                  times["raw_forward"], n_images),
        "raw_batched_vs_unbatched": throughput_ratio(times["raw_forward"], n_images,
                                                     times["raw_forward_unbatched"], n_images),
        "construction_share_of_engine": throughput_ratio(times["engine"], 1.0,
                                                         times["construction"], 1.0),
        "target_engine_vs_raw_forward": ENGINE_TARGET,
    }
    result["engine_target_met"] = result["engine_vs_raw_forward"] >= ENGINE_TARGET
    if with_reference:
        # reference does 2K+1 forwards per pair (clean probe re-embedded), as the research code
        speedup = throughput_ratio(times["engine_end_to_end"], 1.0, times["reference"], 1.0)
        result.update({
            "reference_forwards": n_pairs * (2 * k + 1),
            "reference_images_per_s": n_images / times["reference"].median_s,
            "speedup_vs_reference": speedup,
            "target_speedup_vs_reference": REFERENCE_TARGET,
            "reference_target_met": speedup >= REFERENCE_TARGET})
    return result
