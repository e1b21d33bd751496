"""Shared benchmark machinery: thread pinning, interleaved timing, synthetic workloads.

Every number the benchmarks report is a *ratio of two timings taken in the same run*: the
cases being compared are run in interleaved repetitions (the order rotates each repetition),
and the reported ratio is the median of the per-repetition ratios. On a shared machine a
burst of load then slows both sides of a ratio alike, so the ratio is far more stable than
either absolute time. Process CPU time is recorded beside wall time: a ``cpu_fraction`` well
below 1 (one thread) means the process was waiting for a core, i.e. the machine was loaded.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.data.pairs import Pair
from faceattr.falsification import FalsificationSettings, PairInputs
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.rng import numpy_generator

__all__ = ["BENCH_SEED", "BENCH_THREADS", "CaseTimes", "Workload", "bench_settings",
           "configure_threads", "finite", "interleaved", "machine_state", "make_workload",
           "random_images", "raw_forward",
           "raw_forward_backward", "seq", "throughput_ratio", "unit_rows"]

BENCH_THREADS: int = 1
"""Torch intra-op threads for every benchmark (what ``nox -s validate`` uses, too)."""

BENCH_SEED: int = 20261111
"""Seed of every benchmark stream (inputs, maps, counterfactual draws)."""


def configure_threads(threads: int = BENCH_THREADS) -> dict[str, Any]:
    """Pin torch to ``threads`` intra-op threads and describe the machine.

    Returns
    -------
    dict
        ``torch_threads`` (as read back), ``torch_interop_threads``, ``torch_version``,
        ``cpu_count``, ``python`` and ``platform``.
    """
    torch.set_num_threads(threads)
    return {"torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "torch_version": torch.__version__, "numpy_version": np.__version__,
            "cpu_count": os.cpu_count() or 0, "python": platform.python_version(),
            "platform": platform.platform()}


def machine_state() -> dict[str, float]:
    """The 1/5/15-minute load averages now (a loaded machine makes absolute times noisy)."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": one, "loadavg_5m": five, "loadavg_15m": fifteen}


def finite(value: float) -> float:
    """``value`` if finite, else raise: the reports are strict JSON and never hold NaN."""
    if not np.isfinite(value):
        raise ValueError(f"non-finite benchmark value {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class CaseTimes:
    """Wall and process-CPU seconds of one case, one entry per repetition."""

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        """Median wall time."""
        return float(statistics.median(self.wall_s))

    def to_json(self) -> dict[str, Any]:
        """Median, min, max and all repetitions, plus the CPU/wall fraction."""
        wall_total = sum(self.wall_s)
        return {"median_s": self.median_s, "min_s": min(self.wall_s),
                "max_s": max(self.wall_s), "wall_s": list(self.wall_s),
                "cpu_fraction": sum(self.cpu_s) / wall_total if wall_total > 0 else 0.0}


def interleaved(cases: Mapping[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
                desc: str = "bench") -> dict[str, CaseTimes]:
    """Time each case ``repeats`` times, interleaved, after ``warmup`` untimed rounds.

    Repetition ``r`` runs the cases in the order rotated by ``r``, so no case always runs
    first (after an idle period) or last.

    Parameters
    ----------
    cases : mapping of str to callable
        Zero-argument callables; their results are discarded.
    repeats : int
        Timed repetitions (>= 1).
    warmup : int
        Untimed rounds first (allocator, first-call dispatch, lazy init).
    desc : str
        Progress-bar label.

    Returns
    -------
    dict of str to CaseTimes
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(cases)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            cases[name]()
    for rep in tqdm(range(repeats), desc=desc, leave=False):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            cases[name]()
            wall[name].append(time.perf_counter() - wall_start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: CaseTimes(tuple(wall[name]), tuple(cpu[name])) for name in names}


def throughput_ratio(case: CaseTimes, case_items: float, reference: CaseTimes,
                     reference_items: float) -> float:
    """Median over repetitions of ``throughput(case) / throughput(reference)``.

    Repetition ``r`` of both cases ran back to back (:func:`interleaved`), so each
    per-repetition ratio compares timings taken under the same machine load.

    Parameters
    ----------
    case, reference : CaseTimes
    case_items, reference_items : float
        Work items (images, rows) one repetition of each case processes.
    """
    ratios = [(case_items / max(c, 1e-12)) / (reference_items / max(r, 1e-12))
              for c, r in zip(case.wall_s, reference.wall_s, strict=True)]
    return finite(float(statistics.median(ratios)))


def bench_settings(*, k: int, forward_chunk: int) -> FalsificationSettings:
    """The shipped synthetic protocol's falsification settings with ``k`` and the chunk."""
    return FalsificationSettings(
        regions="quantile", q_frac=0.10, theta_high=1.0, theta_low=0.0,
        area_ratio_bounds=(0.5, 2.0), k_per_region=k, fill="mean", blur_sigma_px=0.0,
        perturbation_sigma=0.02, verdict="simple", distance="geodesic", tau_high=0.7,
        tau_low=0.45, epsilon=0.1, alpha=0.05, forward_chunk=forward_chunk)


def random_images(n: int, size_px: int, *keys: str | int) -> NDArray[np.float32]:
    """``n`` uniform random images (n, 3, size, size) in [0, 1] from the stream ``keys``."""
    rng = numpy_generator(BENCH_SEED, "bench-images", *keys)
    return rng.random((n, 3, size_px, size_px), dtype=np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """One falsification workload: pairs, their clean embeddings, maps and settings.

    Attributes
    ----------
    model : VerificationModel
    inputs : PairInputs
    maps : ndarray (N, H, W)
        Smooth random relevance maps (every map splits into valid regions).
    settings : FalsificationSettings
    method_id : str
    seed : int
    """

    model: VerificationModel
    inputs: PairInputs
    maps: NDArray[np.float64]
    settings: FalsificationSettings
    method_id: str
    seed: int

    @property
    def n_pairs(self) -> int:
        """Pairs in the workload."""
        return len(self.inputs.pairs)

    @property
    def n_counterfactuals(self) -> int:
        """Counterfactual images the engine embeds: ``2 K`` per pair."""
        return 2 * self.settings.k_per_region * self.n_pairs


def _pairs(n: int) -> list[Pair]:
    return [Pair(pair_id=f"bench{i:05d}", image_a=f"a{i}", image_b=f"b{i}", identity_a=str(i),
                 identity_b=str(i), is_genuine=True) for i in range(n)]


def _smooth_maps(n: int, size_px: int, *keys: str | int) -> NDArray[np.float64]:
    # low-frequency random maps (a sum of random cosines): continuous, tie-free, face-map-like
    rng = numpy_generator(BENCH_SEED, "bench-maps", *keys)
    grid = np.linspace(0.0, 1.0, size_px)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    maps = np.zeros((n, size_px, size_px))
    for _ in range(4):
        fy, fx, phase = rng.uniform(0.5, 3.0, n), rng.uniform(0.5, 3.0, n), rng.uniform(0, 6, n)
        maps += np.cos(2 * np.pi * (fy[:, None, None] * yy + fx[:, None, None] * xx)
                       + phase[:, None, None])
    maps += 1e-3 * rng.standard_normal(maps.shape)
    return maps


def make_workload(model: VerificationModel, *, n_pairs: int, k: int, forward_chunk: int,
                  tag: str = "") -> Workload:
    """Random probes and partners at the model's size, their embeddings and smooth maps.

    Image content does not change the cost of a forward pass, so random images measure the
    same work as faces. Streams are keyed by the model, ``n_pairs`` and ``tag``.
    """
    size = model.input_size_px
    keys = (model.name, n_pairs, tag)
    probes = random_images(n_pairs, size, "probes", *keys)
    partners = random_images(n_pairs, size, "partners", *keys)
    embeddings = embed_batched(model, torch.from_numpy(np.concatenate([probes, partners])),
                               chunk_size=forward_chunk).numpy()
    inputs = PairInputs(pairs=_pairs(n_pairs), probes=probes,
                        probe_embeddings=embeddings[:n_pairs],
                        partner_embeddings=embeddings[n_pairs:])
    return Workload(model=model, inputs=inputs, maps=_smooth_maps(n_pairs, size, *keys),
                    settings=bench_settings(k=k, forward_chunk=forward_chunk),
                    method_id="bench", seed=BENCH_SEED)


def raw_forward(model: VerificationModel, images: torch.Tensor, chunk: int) -> None:
    """The model's own batched forward in inference mode, ``chunk`` rows at a time."""
    with torch.inference_mode():
        for part in torch.split(images, chunk):
            model.embed(part)


def raw_forward_backward(model: VerificationModel, images: torch.Tensor,
                         partners: torch.Tensor, chunk: int) -> None:
    """Batched forward + backward to the input of ``sum <f(x), p>``, ``chunk`` rows at a time.

    This is the least work any gradient method needs per path point or noisy sample.
    """
    for part, partner in zip(torch.split(images, chunk), torch.split(partners, chunk),
                             strict=True):
        x = part.detach().clone().requires_grad_(True)
        score = (model.embed(x) * partner).sum()
        torch.autograd.grad(score, x)


def unit_rows(n: int, dim: int, *keys: str | int) -> torch.Tensor:
    """``n`` random L2-normalised rows (n, dim), float32, from the stream ``keys``."""
    rng = numpy_generator(BENCH_SEED, "bench-rows", *keys)
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return torch.from_numpy(rows)


def seq(values: Sequence[int]) -> list[int]:
    """A JSON-friendly copy of a size grid."""
    return [int(v) for v in values]
