"""``python -m faceattr.experiments.metric_table``: the metric-validity table of a graded
protocol, measured end to end (model, maps, falsification records, metrics), then ranked by
:func:`faceattr.validity.metric_validity.metric_validity` (the statistics, which import no
model)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from faceattr.records import PairRecord
from faceattr.validity.metric_validity import (
    DEFAULT_QUALITIES,
    MetricValidityTable,
    collect_metric_values,
    metric_validity,
)
from faceattr.validity.metrics import MetricSettings, PairMetrics

__all__ = ["main", "run_metric_validity"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _graded_protocol(level: int) -> Path:
    return _REPO_ROOT / "validation" / "protocols" / "graded" / f"level{level}.toml"


def run_metric_validity(protocol_path: Path, *, n_pairs: int, settings: MetricSettings,
                        level: int | None = None, methods: Sequence[str] | None = None,
                        n_resamples: int = 2000, alpha: float = 0.05,
                        progress: bool = False) -> MetricValidityTable:
    """Build the maps of a protocol's ``truth_tracking`` families and rank every measure.

    ``n_pairs`` pairs spread evenly over the protocol's pairs (genuine and impostor alike); the
    maps are attributed in fixed chunks and ranked as the run ranks them; the falsification
    records come from :func:`faceattr.falsification.falsify_maps` with the protocol's settings
    and seed (the run's streams, so the same records as the run's for these pairs); the
    metrics from :func:`~faceattr.validity.metrics.evaluate_maps` on the same maps.

    Parameters
    ----------
    protocol_path : Path
    n_pairs : int
    settings : MetricSettings
        ``forward_chunk`` is replaced by the protocol's.
    level : int or None
        Recorded in the table.
    methods : sequence of str, optional
        Restrict every family to these ids (a family left with fewer than 3 is dropped).
    n_resamples, alpha
        The bootstrap.
    progress : bool
        One line per method on stderr.
    """
    from faceattr.experiments.artefact_stage import spread_rows
    from faceattr.experiments.context import (
        attribute_in_fixed_chunks,
        attribution_batch,
        build_methods,
        build_model,
        build_source,
        falsification_settings,
        load_pair_inputs,
        ranked_maps,
    )
    from faceattr.falsification import falsify_maps
    from faceattr.protocol import load_protocol
    from faceattr.validity.metrics import evaluate_maps

    protocol = load_protocol(protocol_path)
    families: dict[str, tuple[str, ...]] = {}
    for claim in protocol.claims:
        if claim.kind != "truth_tracking":
            continue
        members = tuple(claim.params_dict()["methods"])
        if methods is not None:
            members = tuple(m for m in members if m in set(methods))
        if len(set(members)) >= 3:
            families[claim.id] = members
    if not families:
        raise ValueError(f"{protocol_path}: no truth_tracking family with >= 3 methods")
    wanted = {m for members in families.values() for m in members}
    source = build_source(protocol)
    every = source.pairs()
    pairs = [every[i] for i in spread_rows(len(every), n_pairs)]
    model = build_model(protocol)
    chunk = protocol.execution.forward_chunk
    inputs = load_pair_inputs(source, pairs, model, chunk)
    batch = attribution_batch(model, inputs, protocol.seed)
    fsettings = falsification_settings(protocol)
    msettings = replace(settings, forward_chunk=chunk)
    records: list[PairRecord] = []
    results: list[PairMetrics] = []
    for method in build_methods(protocol):
        if method.method_id not in wanted:
            continue
        start = time.perf_counter()
        maps = ranked_maps(protocol, method.method_id,
                           attribute_in_fixed_chunks(method, batch).maps)
        records += falsify_maps(model, inputs, maps, method_id=method.method_id,
                                seed=protocol.seed, settings=fsettings)
        results += evaluate_maps(model, inputs, maps, method_id=method.method_id,
                                 seed=protocol.seed, settings=msettings)
        if progress:
            print(f"  {method.method_id}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows, empty = metric_validity(records, collect_metric_values(results), families,
                                  seed=protocol.seed, n_resamples=n_resamples, alpha=alpha)
    return MetricValidityTable(
        protocol=protocol.name, level=level, seed=protocol.seed, n_pairs=len(pairs),
        settings=msettings.to_json(),
        families=tuple((f, tuple(sorted(set(m)))) for f, m in families.items()),
        empty=empty, rows=rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceattr.experiments.metric_table``: print the table (and write JSON)."""
    parser = argparse.ArgumentParser(
        prog="python -m faceattr.experiments.metric_table",
        description="Rank deletion/insertion AUC, ROAD, faithfulness correlation, pixel "
                    "flipping and the falsification outcomes by Spearman correlation with the "
                    "ground-truth map quality on a graded synthetic protocol.")
    parser.add_argument("--level", type=int, choices=(0, 1, 2), default=0,
                        help="difficulty level: validation/protocols/graded/level<L>.toml")
    parser.add_argument("--protocol", type=Path, default=None,
                        help="another protocol with truth_tracking claims (overrides --level's)")
    parser.add_argument("--n-pairs", type=int, default=30)
    parser.add_argument("--n-steps", type=int, default=MetricSettings().n_steps,
                        help="deletion / insertion steps")
    parser.add_argument("--methods", default=None,
                        help="comma-separated method ids to keep in every family")
    parser.add_argument("--n-resamples", type=int, default=2000)
    parser.add_argument("--quality", choices=DEFAULT_QUALITIES, default="rank_accuracy",
                        help="the quality the printed table shows (the JSON has both)")
    parser.add_argument("--json", type=Path, default=None, help="write the full table here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    import torch

    from faceattr.io import write_json
    from faceattr.protocol import load_protocol

    torch.set_num_threads(args.threads)
    path = args.protocol if args.protocol is not None else _graded_protocol(args.level)
    if not path.exists():
        print(f"{path}: protocol not found (the graded protocols live in the faceattr "
              "checkout's validation/protocols/graded/; pass --protocol)", file=sys.stderr)
        return 2
    fill = load_protocol(path).falsification.settings.fill
    settings = MetricSettings(n_steps=args.n_steps, deletion_fill=fill, faithfulness_fill=fill)
    start = time.perf_counter()
    table = run_metric_validity(
        path, n_pairs=args.n_pairs, settings=settings,
        level=None if args.protocol is not None else args.level,
        methods=None if args.methods is None else [m.strip() for m in args.methods.split(",")],
        n_resamples=args.n_resamples, progress=True)
    print(table.format(quality=args.quality))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        write_json(args.json, table.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
