"""(c) Integrated Gradients and SmoothGrad throughput vs raw batched forward + backward.

Both methods run as a run runs them (:func:`faceattr.experiments.context.attribute_in_fixed_chunks`,
``ATTRIBUTION_CHUNK`` pairs per call). Their work is counted in forward+backward rows: IG does
``n_steps`` path points per pair (captum's extra forwards for the convergence delta are not
counted, so the ratio is conservative), SmoothGrad ``n_samples`` noisy copies per pair.

Cases timed in interleaved repetitions:

``integrated_gradients``, ``smoothgrad``
    The methods on ``n_pairs`` random probes with random partner embeddings.
``raw_fwd_bwd``
    ``d <f(x), p> / dx`` on ``n_pairs * n_steps`` random images in chunks of IG's
    ``internal_batch_size`` rows: the hardware's limit.
``raw_fwd_bwd_chunk``
    The same on ``n_pairs * n_samples`` images in chunks of ``ATTRIBUTION_CHUNK`` rows: the
    batch SmoothGrad actually gets (one noisy copy of each pair per pass), shown to separate
    the cost of small batches from the method's own overhead.

Targets: ``throughput(method) / throughput(raw_fwd_bwd) >= 0.7`` for both methods.
"""

from __future__ import annotations

from typing import Any

import torch

from faceattr.attribution import AttributionBatch
from faceattr.attribution.gradient import SmoothGrad
from faceattr.attribution.integrated import IntegratedGradients
from faceattr.bench.common import (
    BENCH_SEED,
    interleaved,
    random_images,
    raw_forward_backward,
    throughput_ratio,
    unit_rows,
)
from faceattr.experiments.context import ATTRIBUTION_CHUNK, attribute_in_fixed_chunks
from faceattr.models.base import VerificationModel, embed_batched

__all__ = ["ATTRIBUTION_TARGET", "bench_attribution"]

ATTRIBUTION_TARGET: float = 0.7
"""(c): method forward+backward rows/s over raw batched forward+backward rows/s."""


def bench_attribution(model: VerificationModel, *, n_pairs: int, ig_steps: int,
                      sg_samples: int, internal_batch_size: int, repeats: int
                      ) -> dict[str, Any]:
    """Measure (c) for one model.

    Parameters
    ----------
    model : VerificationModel
    n_pairs : int
        Probes attributed (a multiple of ``ATTRIBUTION_CHUNK`` avoids padded pairs).
    ig_steps, sg_samples : int
        IG quadrature nodes and SmoothGrad noisy copies.
    internal_batch_size : int
        IG's rows per forward/backward, and the raw baseline's chunk.
    repeats : int
        Interleaved timed repetitions (one untimed warm-up round first).
    """
    size = model.input_size_px
    probes = torch.from_numpy(random_images(n_pairs, size, "attr-probes", model.name))
    partners_images = torch.from_numpy(random_images(n_pairs, size, "attr-partners", model.name))
    partners = embed_batched(model, partners_images, chunk_size=ATTRIBUTION_CHUNK)
    batch = AttributionBatch(model=model, probes=probes, partner_embeddings=partners,
                             pair_ids=tuple(f"bench{i:05d}" for i in range(n_pairs)),
                             identity_masks=None, seed=BENCH_SEED)
    ig = IntegratedGradients("integrated_gradients", IntegratedGradients.Params(
        n_steps=ig_steps, internal_batch_size=internal_batch_size))
    sg = SmoothGrad("smoothgrad", SmoothGrad.Params(n_samples=sg_samples))
    ig_rows, sg_rows = n_pairs * ig_steps, n_pairs * sg_samples
    raw = torch.from_numpy(random_images(ig_rows, size, "attr-raw", model.name))
    raw_partners = unit_rows(ig_rows, partners.shape[1], "attr-raw", model.name)
    raw_small = raw[:sg_rows] if sg_rows <= ig_rows else torch.from_numpy(
        random_images(sg_rows, size, "attr-raw-small", model.name))
    raw_small_partners = unit_rows(sg_rows, partners.shape[1], "attr-raw-small", model.name)
    cases = {
        "integrated_gradients": lambda: attribute_in_fixed_chunks(ig, batch),
        "smoothgrad": lambda: attribute_in_fixed_chunks(sg, batch),
        "raw_fwd_bwd": lambda: raw_forward_backward(model, raw, raw_partners,
                                                    internal_batch_size),
        "raw_fwd_bwd_chunk": lambda: raw_forward_backward(model, raw_small, raw_small_partners,
                                                          ATTRIBUTION_CHUNK),
    }
    times = interleaved(cases, repeats=repeats, desc=f"attribution {model.name}")
    ig_ratio = throughput_ratio(times["integrated_gradients"], ig_rows, times["raw_fwd_bwd"],
                                ig_rows)
    sg_ratio = throughput_ratio(times["smoothgrad"], sg_rows, times["raw_fwd_bwd"], ig_rows)
    return {
        "model": model.name, "input_size_px": size, "n_pairs": n_pairs,
        "attribution_chunk_pairs": ATTRIBUTION_CHUNK, "ig_steps": ig_steps,
        "sg_samples": sg_samples, "internal_batch_size": internal_batch_size,
        "ig_rows": ig_rows, "sg_rows": sg_rows, "repeats": repeats,
        "times": {name: t.to_json() for name, t in times.items()},
        "raw_fwd_bwd_rows_per_s": ig_rows / times["raw_fwd_bwd"].median_s,
        "ig_rows_per_s": ig_rows / times["integrated_gradients"].median_s,
        "sg_rows_per_s": sg_rows / times["smoothgrad"].median_s,
        "ig_vs_raw_fwd_bwd": ig_ratio,
        "smoothgrad_vs_raw_fwd_bwd": sg_ratio,
        "smoothgrad_vs_raw_fwd_bwd_same_chunk": throughput_ratio(
            times["smoothgrad"], sg_rows, times["raw_fwd_bwd_chunk"], sg_rows),
        "raw_chunk_vs_raw_batched": throughput_ratio(
            times["raw_fwd_bwd_chunk"], sg_rows, times["raw_fwd_bwd"], ig_rows),
        "target": ATTRIBUTION_TARGET,
        "ig_target_met": ig_ratio >= ATTRIBUTION_TARGET,
        "smoothgrad_target_met": sg_ratio >= ATTRIBUTION_TARGET,
    }
