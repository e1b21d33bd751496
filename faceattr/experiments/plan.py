"""``faceattr plan``: the work a protocol implies, and its expected time from a calibration."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from faceattr.attribution import AttributionBatch
from faceattr.experiments.run import (
    ATTRIBUTION_CHUNK,
    build_methods,
    build_model,
    build_source,
    falsification_settings,
)
from faceattr.models.base import embed_batched
from faceattr.protocol import Protocol

__all__ = ["MethodPlan", "RunPlan", "plan_run"]


@dataclass(frozen=True, slots=True)
class MethodPlan:
    """Cost of one method over the run: attribution calls and counterfactual forwards."""

    method: str
    attribution_s_per_pair: float
    counterfactual_forwards: int
    expected_s: float


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The work a protocol implies."""

    protocol: str
    n_pairs: int
    n_methods: int
    k_per_region: int
    forward_s_per_image: float
    methods: tuple[MethodPlan, ...]

    @property
    def expected_s(self) -> float:
        """Expected wall time, seconds (one process, this machine)."""
        return sum(m.expected_s for m in self.methods)

    def render(self) -> str:
        """A table for the terminal."""
        lines = [f"protocol {self.protocol}: {self.n_pairs} pairs x {self.n_methods} methods, "
                 f"K = {self.k_per_region} per region -> {2 * self.k_per_region} counterfactual "
                 f"forwards per pair per method; forward {1e3 * self.forward_s_per_image:.2f} "
                 "ms/image (calibrated)",
                 f"{'method':<24}{'attr s/pair':>12}{'cf forwards':>14}{'expected s':>12}"]
        lines += [f"{m.method:<24}{m.attribution_s_per_pair:>12.4f}"
                  f"{m.counterfactual_forwards:>14}{m.expected_s:>12.1f}" for m in self.methods]
        lines.append(f"{'total':<24}{'':>12}{'':>14}{self.expected_s:>12.1f}")
        lines.append("(an upper bound: pairs whose map is trivial need no counterfactual forwards)")
        return "\n".join(lines)


def plan_run(protocol: Protocol) -> RunPlan:
    """Calibrate on the first pairs and extrapolate to the whole protocol."""
    source = build_source(protocol)
    all_pairs = source.pairs()
    pairs = all_pairs[:ATTRIBUTION_CHUNK]
    model = build_model(protocol)
    probes = torch.from_numpy(np.stack([source.load_image(p.image_a).image for p in pairs]))
    partners = torch.from_numpy(np.stack([source.load_image(p.image_b).image for p in pairs]))
    masks_list = [source.load_image(p.image_a).identity_mask for p in pairs]
    masks = None if any(m is None for m in masks_list) else np.stack(masks_list)  # type: ignore[arg-type]
    chunk = protocol.execution.forward_chunk
    cf = probes[torch.arange(chunk) % len(pairs)]
    embed_batched(model, cf, chunk_size=chunk)  # warm-up
    started = time.perf_counter()
    embed_batched(model, cf, chunk_size=chunk)
    forward_s = (time.perf_counter() - started) / chunk
    batch = AttributionBatch(model=model, probes=probes,
                             partner_embeddings=embed_batched(model, partners, chunk_size=chunk),
                             pair_ids=tuple(p.pair_id for p in pairs), identity_masks=masks,
                             seed=protocol.seed)
    k = falsification_settings(protocol).k_per_region
    n_pairs = len(all_pairs)
    plans = []
    for method in build_methods(protocol):
        started = time.perf_counter()
        method.attribute(batch)
        attr_s = (time.perf_counter() - started) / len(pairs)
        forwards = n_pairs * 2 * k
        plans.append(MethodPlan(method=method.method_id, attribution_s_per_pair=attr_s,
                                counterfactual_forwards=forwards,
                                expected_s=n_pairs * attr_s + forwards * forward_s))
    return RunPlan(protocol=protocol.name, n_pairs=n_pairs, n_methods=len(plans),
                   k_per_region=k, forward_s_per_image=forward_s, methods=tuple(plans))
