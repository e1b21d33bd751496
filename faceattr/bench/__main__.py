"""``python -m faceattr.bench [--quick] [--models a,b] [--out DIR] [--no-memory] [--device D]
[--only suite|layouts|dask]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from faceattr.bench.suite import (
    DEFAULT_MODELS,
    full_config,
    quick_config,
    run_benchmarks,
    with_overrides,
)
from faceattr.io import write_json
from faceattr.models.loading import MODEL_NAMES, load_model


def _device_available(name: str) -> bool:
    try:
        device = torch.device(name)
    except RuntimeError:
        return False
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    return device.type == "cpu"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, write ``<out>/*.json`` and print the markdown table."""
    parser = argparse.ArgumentParser(prog="python -m faceattr.bench",
                                     description="faceattr benchmarks (issue #11), as ratios")
    parser.add_argument("--quick", action="store_true",
                        help="small workloads and a reduced validation for (d) (minutes)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help=f"comma-separated (default: {','.join(DEFAULT_MODELS)})")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"),
                        help="report folder (default: reports/bench)")
    parser.add_argument("--no-memory", action="store_true", help="skip (d)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for (a), (b), (c), (e), e.g. cuda (default cpu); "
                             "(d) always measures the CPU validation")
    parser.add_argument("--only", choices=["suite", "layouts", "dask"], default="suite",
                        help="suite: (a)-(e) (default); layouts: the CPU speed-ups of the "
                             "engine's forward (faceattr.bench.layouts); dask: the Dask executor "
                             "vs the serial loop (faceattr.bench.dask_bench)")
    parser.add_argument("--dask-workers", type=int, default=2,
                        help="local worker processes for --only dask (default 2)")
    args = parser.parse_args(argv)
    if args.device != "cpu" and not _device_available(args.device):
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no such device; "
                     "use --device cpu or a torch build for that accelerator")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_NAMES]
    if not models or unknown:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                     f"known: {', '.join(MODEL_NAMES)}")
    if args.only != "suite":
        return _only(args, models)
    config = quick_config() if args.quick else full_config()
    config = with_overrides(config, memory=False if args.no_memory else None,
                            threads=args.threads)
    summary = run_benchmarks(models, args.out, config, device=args.device)
    print(summary["table_markdown"])
    print(f"\nreports: {args.out}/{{engine,attribution,scaling,memory,summary}}.json")
    return 0


def _only(args: argparse.Namespace, models: list[str]) -> int:
    """``--only layouts`` or ``--only dask``: one JSON report and its table."""
    from faceattr.bench.common import configure_threads

    machine = configure_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "dask":
        from faceattr.bench.dask_bench import bench_dask, markdown

        result = bench_dask(n_workers=args.dask_workers, n_pairs=12 if args.quick else 24)
        write_json(args.out / "dask.json", {"machine": machine, "result": result})
        print(markdown(result))
        return 0
    from faceattr.bench.layouts import bench_layouts, markdown_rows

    rows = ["| model | change | engine img/s ratio | max drift diff (rad) | tolerance at the "
            "smallest drift (rad) | within tolerance, verdicts equal |",
            "|---|---|---|---|---|---|"]
    results = {}
    for name in models:
        model = load_model(name, seed=0)
        model.network.to(torch.device(args.device))
        small = model.input_size_px < 100
        results[name] = bench_layouts(
            model, n_pairs=(8 if small else 2) if args.quick else (16 if small else 4),
            k=8 if args.quick else 16, forward_chunk=32 if small else 16,
            repeats=3 if args.quick else 5)
        rows += markdown_rows(results[name])
    write_json(args.out / "layouts.json", {"machine": machine, "results": results})
    print("\n".join(rows))
    for name, result in results.items():
        raw = result["raw"]
        print(f"{name}: raw forward channels_last / default {raw['raw_channels_last_speedup']:.2f}"
              f", inference_mode / no_grad {raw['raw_inference_vs_no_grad']:.2f}; engine / "
              f"default raw {raw['engine_vs_default_raw_forward']:.2f}, engine / best raw "
              f"({raw['best_raw_layout']}) {raw['engine_vs_best_raw_forward']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
