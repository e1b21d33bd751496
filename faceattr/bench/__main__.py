"""``python -m faceattr.bench [--quick] [--models a,b] [--out DIR] [--no-memory] [--device D]``."""

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
from faceattr.models.loading import MODEL_NAMES


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
    args = parser.parse_args(argv)
    if args.device != "cpu" and not _device_available(args.device):
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no such device; "
                     "use --device cpu or a torch build for that accelerator")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_NAMES]
    if not models or unknown:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                     f"known: {', '.join(MODEL_NAMES)}")
    config = quick_config() if args.quick else full_config()
    config = with_overrides(config, memory=False if args.no_memory else None,
                            threads=args.threads)
    summary = run_benchmarks(models, args.out, config, device=args.device)
    print(summary["table_markdown"])
    print(f"\nreports: {args.out}/{{engine,attribution,scaling,memory,summary}}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
