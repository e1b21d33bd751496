"""The benchmark suite: sizes per model, one run of (a)-(e), JSON reports and a table."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from faceattr.bench.attribution import bench_attribution
from faceattr.bench.common import configure_threads, machine_state
from faceattr.bench.engine import bench_engine
from faceattr.bench.memory import validation_peak_rss
from faceattr.bench.scaling import bench_scaling
from faceattr.io import write_json
from faceattr.models.base import VerificationModel
from faceattr.models.loading import load_model

__all__ = ["DEFAULT_MODELS", "BenchConfig", "ModelSizes", "full_config", "markdown_table",
           "quick_config", "run_benchmarks"]

DEFAULT_MODELS: tuple[str, ...] = ("synthetic_cnn", "dlib_resnet", "facenet_random")


@dataclass(frozen=True, slots=True)
class ModelSizes:
    """Workload sizes for one model (see the benchmark modules for what each means)."""

    engine_pairs: int
    engine_k: int
    engine_chunk: int
    engine_repeats: int
    attr_pairs: int
    ig_steps: int
    sg_samples: int
    ig_internal_batch: int
    attr_repeats: int
    scaling_pairs: tuple[int, ...]
    scaling_k: tuple[int, ...]
    scaling_chunk: int
    scaling_repeats: int


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What one suite run measures.

    Attributes
    ----------
    mode : str
        ``"quick"``, ``"full"`` or a custom label.
    small, large : ModelSizes
        Sizes for the 64 px synthetic model and for the 150-160 px real architectures.
    memory : bool
        Run (d).
    memory_quick : bool
        (d) on a reduced copy of the default protocol.
    threads : int
        Torch intra-op threads.
    """

    mode: str
    small: ModelSizes
    large: ModelSizes
    memory: bool
    memory_quick: bool
    threads: int = 1

    def sizes(self, model: VerificationModel) -> ModelSizes:
        """The sizes for ``model`` (small below 100 px input)."""
        return self.small if model.input_size_px < 100 else self.large


def quick_config() -> BenchConfig:
    """A few minutes on 2 idle cores: small workloads, 3-5 repetitions, reduced (d)."""
    small = ModelSizes(engine_pairs=8, engine_k=8, engine_chunk=64, engine_repeats=5,
                       attr_pairs=8, ig_steps=16, sg_samples=8, ig_internal_batch=64,
                       attr_repeats=5, scaling_pairs=(2, 4, 8), scaling_k=(4, 8, 16),
                       scaling_chunk=16, scaling_repeats=3)
    large = ModelSizes(engine_pairs=2, engine_k=8, engine_chunk=32, engine_repeats=3,
                       attr_pairs=4, ig_steps=8, sg_samples=4, ig_internal_batch=64,
                       attr_repeats=3, scaling_pairs=(1, 2, 4), scaling_k=(2, 4, 8),
                       scaling_chunk=4, scaling_repeats=2)
    return BenchConfig(mode="quick", small=small, large=large, memory=True, memory_quick=True)


def full_config() -> BenchConfig:
    """Protocol-sized workloads (forward_chunk 64, IG 32 steps), the shipped validation for (d)."""
    small = ModelSizes(engine_pairs=25, engine_k=32, engine_chunk=64, engine_repeats=7,
                       attr_pairs=8, ig_steps=32, sg_samples=8, ig_internal_batch=64,
                       attr_repeats=5, scaling_pairs=(4, 8, 16), scaling_k=(8, 16, 32),
                       scaling_chunk=64, scaling_repeats=3)
    large = ModelSizes(engine_pairs=4, engine_k=16, engine_chunk=64, engine_repeats=5,
                       attr_pairs=4, ig_steps=32, sg_samples=8, ig_internal_batch=64,
                       attr_repeats=3, scaling_pairs=(1, 2, 4), scaling_k=(4, 8, 16),
                       scaling_chunk=8, scaling_repeats=3)
    return BenchConfig(mode="full", small=small, large=large, memory=True, memory_quick=False)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=False, cwd=Path(__file__).resolve().parent)
    except OSError:
        return None
    return out.stdout.strip() or None


def _device_info(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"name": device}
    if torch.device(device).type == "cuda":
        info["accelerator"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _timed_section(meta: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    before = machine_state()
    result = fn()
    meta.setdefault("load", {})[name] = {"before": before, "after": machine_state()}
    return result


def _bench_model(meta: dict[str, Any], model: VerificationModel, config: BenchConfig
                 ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    sizes = config.sizes(model)
    engine = _timed_section(meta, f"engine:{model.name}", lambda: bench_engine(
        model, n_pairs=sizes.engine_pairs, k=sizes.engine_k,
        forward_chunk=sizes.engine_chunk, repeats=sizes.engine_repeats))
    attribution = _timed_section(meta, f"attribution:{model.name}", lambda: bench_attribution(
        model, n_pairs=sizes.attr_pairs, ig_steps=sizes.ig_steps, sg_samples=sizes.sg_samples,
        internal_batch_size=sizes.ig_internal_batch, repeats=sizes.attr_repeats))
    scaling = _timed_section(meta, f"scaling:{model.name}", lambda: bench_scaling(
        model, n_pairs_grid=sizes.scaling_pairs, k_grid=sizes.scaling_k,
        forward_chunk=sizes.scaling_chunk, repeats=sizes.scaling_repeats))
    return engine, attribution, scaling


def run_benchmarks(models: Sequence[str], out_dir: Path, config: BenchConfig, *,
                   model_loader: Callable[[str], VerificationModel] | None = None,
                   device: str = "cpu") -> dict[str, Any]:
    """Run (a)-(e) for ``models`` and write ``engine``, ``attribution``, ``scaling``,
    ``memory`` and ``summary`` JSON files into ``out_dir``.

    Parameters
    ----------
    models : sequence of str
        Model names for :func:`faceattr.models.loading.load_model` (``facenet_random`` is
        seeded with 0).
    out_dir : pathlib.Path
        Report folder (created).
    config : BenchConfig
    model_loader : callable or None
        Replaces :func:`load_model` (tests).
    device : str
        torch device the networks run on for (a), (b), (c), (e); inputs start on CPU, as in a
        run, so host-device copies are part of every timed case alike.

    Returns
    -------
    dict
        The summary document (also written to ``summary.json``).
    """
    threads_info = configure_threads(config.threads)
    loader = model_loader or (lambda name: load_model(name, seed=0))
    meta: dict[str, Any] = {
        "mode": config.mode, "config": asdict(config), "machine": threads_info,
        "git_commit": _git_commit(), "device": _device_info(device),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    engine: dict[str, Any] = {}
    attribution: dict[str, Any] = {}
    scaling: dict[str, Any] = {}
    for name in models:
        model = loader(name)
        model.network.to(torch.device(device))
        engine[name], attribution[name], scaling[name] = _bench_model(meta, model, config)
    memory: dict[str, Any] = {"skipped": "disabled"}
    if config.memory:
        try:
            memory = _timed_section(meta, "memory", lambda: validation_peak_rss(
                quick=config.memory_quick, threads=config.threads))
        except (RuntimeError, ValueError, OSError) as exc:  # the timings are still written
            memory = {"skipped": f"error: {type(exc).__name__}: {exc}"}
    meta["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, body in (("engine", engine), ("attribution", attribution),
                           ("scaling", scaling)):
        write_json(out_dir / f"{filename}.json", {"meta": meta, "results": body})
    write_json(out_dir / "memory.json", {"meta": meta, "result": memory})
    summary = {"meta": meta, "rows": _summary_rows(engine, attribution, scaling),
               "memory": {k: memory[k] for k in ("peak_rss_gb", "target_gb", "target_met",
                                                 "protocol", "returncode", "skipped")
                          if k in memory}}
    summary["table_markdown"] = markdown_table(summary)
    write_json(out_dir / "summary.json", summary)
    return summary


def _summary_rows(engine: dict[str, Any], attribution: dict[str, Any],
                  scaling: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in engine:
        e, a, s = engine[name], attribution[name], scaling[name]
        rows.append({
            "model": name, "input_size_px": e["input_size_px"],
            "a_engine_vs_raw_forward": e["engine_vs_raw_forward"],
            "a_engine_images_per_s": e["engine_images_per_s"],
            "a_construction_share": e["construction_share_of_engine"],
            "b_speedup_vs_reference": e.get("speedup_vs_reference"),
            "b_ceiling_batched_vs_unbatched": e["raw_batched_vs_unbatched"],
            "c_ig_vs_raw_fwd_bwd": a["ig_vs_raw_fwd_bwd"],
            "c_smoothgrad_vs_raw_fwd_bwd": a["smoothgrad_vs_raw_fwd_bwd"],
            "c_smoothgrad_vs_raw_same_chunk": a["smoothgrad_vs_raw_fwd_bwd_same_chunk"],
            "e_r2_time_vs_images": s["fit_time_vs_images"]["r2"],
            "e_r2_time_vs_n_pairs": s["fit_time_vs_n_pairs_at_max_k"]["r2"],
            "e_r2_time_vs_k": s["fit_time_vs_k_at_max_n_pairs"]["r2"],
            "e_seconds_per_image": s["fit_time_vs_images"]["slope"],
        })
    return rows


def _fmt(value: Any, spec: str, target: float | None = None, higher: bool = True,
         suffix: str = "") -> str:
    if value is None:
        return "-"
    text = format(value, spec) + suffix
    if target is not None:
        met = value >= target if higher else value <= target
        text += "" if met else " (miss)"
    return text


def markdown_table(summary: dict[str, Any]) -> str:
    """A short markdown table of (a)-(e) with targets; misses are marked ``(miss)``."""
    meta = summary["meta"]
    lines = [
        f"Benchmark ({meta['mode']}, torch threads = {meta['machine']['torch_threads']}, "
        f"torch {meta['machine']['torch_version']}); ratios are medians of per-repetition "
        "ratios of interleaved timings.",
        "",
        "| model | px | (a) engine / raw fwd (>= 0.8) | (b) vs reference loop (>= 20x) "
        "| (b) ceiling: raw batched / batch-of-one "
        "| (c) IG / raw fwd+bwd (>= 0.7) | (c) SmoothGrad / raw fwd+bwd (>= 0.7) "
        "| (e) R^2 time ~ images (n_pairs, K) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        speedup = row["b_speedup_vs_reference"]
        lines.append(
            f"| {row['model']} | {row['input_size_px']} "
            f"| {_fmt(row['a_engine_vs_raw_forward'], '.2f', 0.8)} "
            f"| {_fmt(speedup, '.1f', 20.0, suffix='x')} "
            f"| {row['b_ceiling_batched_vs_unbatched']:.1f}x "
            f"| {_fmt(row['c_ig_vs_raw_fwd_bwd'], '.2f', 0.7)} "
            f"| {_fmt(row['c_smoothgrad_vs_raw_fwd_bwd'], '.2f', 0.7)} "
            f"| {row['e_r2_time_vs_images']:.3f} ({row['e_r2_time_vs_n_pairs']:.3f}, "
            f"{row['e_r2_time_vs_k']:.3f}) |")
    memory = summary["memory"]
    if "peak_rss_gb" in memory:
        lines += ["", f"(d) peak RSS of `pytest validation` ({memory['protocol']}): "
                      f"{_fmt(memory['peak_rss_gb'], '.2f', 3.0, higher=False)} GB "
                      f"(target <= 3 GB; pytest exit {memory['returncode']})"]
    else:
        lines += ["", f"(d) skipped: {memory.get('skipped', 'disabled')}"]
    return "\n".join(lines)


def with_overrides(config: BenchConfig, *, memory: bool | None = None,
                   threads: int | None = None) -> BenchConfig:
    """``config`` with the memory switch and/or thread count replaced."""
    if memory is not None:
        config = replace(config, memory=memory)
    if threads is not None:
        config = replace(config, threads=threads)
    return config
