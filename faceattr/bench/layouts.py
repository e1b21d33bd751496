"""CPU speed-ups of the engine's forward that change no result beyond the float tolerance.

``python -m faceattr.bench --only layouts [--models a,b] [--quick]`` times the falsification
engine (:func:`faceattr.falsification.falsify_maps`) on one workload per model with its
network transformed, in interleaved repetitions against the network as it is, and compares
every record with the untransformed engine's:

``channels_last``
    ``network.to(memory_format=torch.channels_last)``: NHWC convolutions (oneDNN's native
    layout on x86).
``bn_fold``
    Batch norm folded into the preceding convolution (``torch.fx`` ``fuse``, eval mode): one
    kernel instead of two; not applicable to a network ``torch.fx`` cannot trace.
``channels_last+bn_fold``
    Both.
``compile``
    ``torch.compile(network)`` (inductor, C++ on CPU), compiled before timing.
``inference_mode``
    Already on: ``embed_batched`` runs every engine forward under ``torch.inference_mode``.
    What it buys is measured on the raw forward (``raw_inference_vs_no_grad``).

Beside them: the raw batched forward (``model.embed`` in chunks) of the network as it is and
in channels-last (``raw_channels_last_speedup``), and the engine against the faster of the
two raw layouts (``engine_vs_best_raw_forward``): a ratio to the default layout alone would
hide what channels-last gains.

Per variant: ``engine_speedup`` (median of per-repetition ratios of engine images/s,
variant over baseline) and ``max_drift_diff_rad`` / ``max_score_drop_diff`` (largest
difference of any counterfactual's drift or score drop over the records), set against the
smallest cross-machine tolerance of any of the records' drifts
(:func:`faceattr.stats.tolerance.angle_tolerance`): ``within_tolerance`` is
``max diff <= that tolerance`` and ``verdicts_equal`` compares every verdict. A variant is
worth keeping only when it is faster *and* within the tolerance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from faceattr.bench.common import (
    Workload,
    interleaved,
    make_workload,
    random_images,
    throughput_ratio,
)
from faceattr.falsification import falsify_maps
from faceattr.models.base import VerificationModel
from faceattr.records import PairRecord
from faceattr.stats.tolerance import angle_tolerance

__all__ = ["VARIANTS", "bench_layouts", "fold_batch_norm", "to_channels_last"]


def to_channels_last(network: nn.Module) -> nn.Module:
    """A copy of ``network`` with its 4-d parameters in channels-last memory format."""
    return copy.deepcopy(network).to(memory_format=torch.channels_last)  # type: ignore[call-overload,no-any-return]


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """A copy of ``network`` (eval mode) with each conv -> batch-norm pair fused into one conv.

    Raises
    ------
    ValueError
        ``torch.fx`` cannot trace the network (its forward has data-dependent control flow).
    """
    from torch.fx.experimental.optimization import fuse

    try:
        fused: nn.Module = fuse(copy.deepcopy(network).eval())
    except Exception as exc:  # noqa: BLE001 — any tracing failure means: not applicable
        raise ValueError(f"torch.fx cannot trace {type(network).__name__}: "
                         f"{type(exc).__name__}") from None
    return fused


def _compiled(network: nn.Module) -> nn.Module:
    return torch.compile(copy.deepcopy(network))  # type: ignore[return-value]


VARIANTS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "channels_last": to_channels_last,
    "bn_fold": fold_batch_norm,
    "channels_last+bn_fold": lambda n: to_channels_last(fold_batch_norm(n)),
    "compile": _compiled,
}


def _engine(model: VerificationModel, workload: Workload) -> list[PairRecord]:
    return falsify_maps(model, workload.inputs, workload.maps, method_id=workload.method_id,
                        seed=workload.seed, settings=workload.settings)


def _raw(model: VerificationModel, images: torch.Tensor, chunk: int, *,
         inference: bool) -> None:
    with torch.inference_mode() if inference else torch.no_grad():
        for part in torch.split(images, chunk):
            model.embed(part)


def _differences(base: list[PairRecord], other: list[PairRecord]) -> dict[str, Any]:
    drift = max(float(np.max(np.abs(np.subtract(a.drift_high_rad + a.drift_low_rad,
                                                b.drift_high_rad + b.drift_low_rad))))
                for a, b in zip(base, other, strict=True) if a.drift_high_rad)
    drop = max(float(np.max(np.abs(np.subtract(a.score_drop_high + a.score_drop_low,
                                               b.score_drop_high + b.score_drop_low))))
               for a, b in zip(base, other, strict=True) if a.score_drop_high)
    smallest = min(min(a.drift_high_rad + a.drift_low_rad) for a in base if a.drift_high_rad)
    tolerance = angle_tolerance(float(np.cos(smallest)))
    return {"max_drift_diff_rad": drift, "max_score_drop_diff": drop,
            "tolerance_at_smallest_drift_rad": tolerance,
            "within_tolerance": drift <= tolerance,
            "verdicts_equal": all((a.falsified, a.falsified_simple, a.falsified_theorem)
                                  == (b.falsified, b.falsified_simple, b.falsified_theorem)
                                  for a, b in zip(base, other, strict=True)),
            "records_identical": base == other}


def bench_layouts(model: VerificationModel, *, n_pairs: int, k: int, forward_chunk: int,
                  repeats: int, variants: tuple[str, ...] = tuple(VARIANTS)
                  ) -> dict[str, Any]:
    """Time the engine under each variant against the network as it is; compare records.

    Returns
    -------
    dict
        Per variant: ``engine_speedup``, the record differences, or ``skipped`` with why.
    """
    workload = make_workload(model, n_pairs=n_pairs, k=k, forward_chunk=forward_chunk,
                             tag="layouts")
    n_images = workload.n_counterfactuals
    baseline = _engine(model, workload)
    models: dict[str, VerificationModel] = {}
    out: dict[str, Any] = {"model": model.name, "n_pairs": n_pairs, "k_per_region": k,
                           "forward_chunk": forward_chunk, "repeats": repeats, "variants": {}}
    for name in variants:
        try:
            models[name] = replace(model, network=VARIANTS[name](model.network))
            _engine(models[name], workload)  # compile / first-call work, untimed
        except (ValueError, RuntimeError) as exc:
            out["variants"][name] = {"skipped": str(exc).splitlines()[0][:200]}
    raw_images = torch.from_numpy(random_images(n_images, model.input_size_px, "raw",
                                                model.name))
    last = replace(model, network=to_channels_last(model.network))
    cases: dict[str, Callable[[], object]] = {
        "baseline": lambda: _engine(model, workload),
        "raw_default": lambda: _raw(model, raw_images, forward_chunk, inference=True),
        "raw_no_grad": lambda: _raw(model, raw_images, forward_chunk, inference=False),
        "raw_channels_last": lambda: _raw(last, raw_images, forward_chunk, inference=True)}
    for name, variant in models.items():
        cases[name] = lambda v=variant: _engine(v, workload)  # type: ignore[misc]
    times = interleaved(cases, repeats=repeats, desc=f"layouts {model.name}")

    def ratio(a: str, b: str) -> float:
        return throughput_ratio(times[a], n_images, times[b], n_images)

    best_raw = max(("raw_default", "raw_channels_last"), key=lambda c: -times[c].median_s)
    out["raw"] = {"raw_channels_last_speedup": ratio("raw_channels_last", "raw_default"),
                  "raw_inference_vs_no_grad": ratio("raw_default", "raw_no_grad"),
                  "best_raw_layout": best_raw,
                  "engine_vs_default_raw_forward": ratio("baseline", "raw_default"),
                  "engine_vs_best_raw_forward": ratio("baseline", best_raw),
                  "times": {name: t.to_json() for name, t in times.items()}}
    checks = {name: _engine(variant, workload) for name, variant in models.items()}
    for name, records in checks.items():
        out["variants"][name] = {
            "engine_speedup": throughput_ratio(times[name], n_images, times["baseline"],
                                               n_images),
            "engine_images_per_s": n_images / times[name].median_s,
            **_differences(baseline, records)}
    out["baseline_engine_images_per_s"] = n_images / times["baseline"].median_s
    return out


def markdown_rows(results: dict[str, Any]) -> list[str]:
    """One table row per (model, variant)."""
    rows = []
    for name, row in results["variants"].items():
        if "skipped" in row:
            rows.append(f"| {results['model']} | {name} | - | - | - | skipped: "
                        f"{row['skipped']} |")
            continue
        rows.append(
            f"| {results['model']} | {name} | {row['engine_speedup']:.2f} "
            f"| {row['max_drift_diff_rad']:.2e} | {row['tolerance_at_smallest_drift_rad']:.2e} "
            f"| {'yes' if row['within_tolerance'] and row['verdicts_equal'] else 'NO'}"
            f"{' (identical)' if row['records_identical'] else ''} |")
    return rows
