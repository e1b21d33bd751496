"""The metric-validity stage (``[metric_validity]``): the evaluation metrics of the run's maps.

For every map of the families the protocol's ``truth_tracking`` claims declare, on ``n_pairs``
pairs spread evenly over the run (genuine and impostor alike), computes the metrics of
:mod:`faceattr.validity.metrics` and writes ``metric_values.json``
(:class:`~faceattr.validity.metric_artefact.MetricValuesResult`). The maps are rebuilt exactly
as the run built them (fixed attribution chunks, the same seed and ranking), and each row
carries its map's digest, which the judging side checks against the run record's
``map_sha256``: the metrics are computed on the same maps and pairs as the falsification test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from faceattr.data.pairs import Pair
from faceattr.experiments.artefact_stage import spread_rows
from faceattr.falsification.mapstats import map_stats
from faceattr.protocol import Protocol
from faceattr.validity.metric_artefact import (
    MetricValueRow,
    MetricValuesResult,
    write_metric_values,
)
from faceattr.validity.metrics import PairMetrics, metric_values

if TYPE_CHECKING:
    from faceattr.experiments.context import RunContext

__all__ = ["family_methods", "run_metric_stage"]


def family_methods(protocol: Protocol) -> tuple[str, ...]:
    """Every method id of a ``truth_tracking`` family (sorted, unique)."""
    wanted: set[str] = set()
    for claim in protocol.claims:
        if claim.kind == "truth_tracking":
            wanted.update(str(m) for m in claim.params_dict().get("methods", []))
    return tuple(sorted(wanted & {m.id for m in protocol.methods}))


def _row(result: PairMetrics, digest: str | None, metrics: Sequence[str]) -> MetricValueRow:
    values = metric_values(result)
    return MetricValueRow(method=result.method, pair_id=result.pair_id,
                          is_genuine=result.is_genuine, status=result.status,
                          map_sha256=digest, values=tuple((m, values[m]) for m in metrics))


def _error_row(pair: Pair, method_id: str, metrics: Sequence[str]) -> MetricValueRow:
    """A pair whose attribution failed (its record is ``error:<type>``): no map, no values."""
    return MetricValueRow(method=method_id, pair_id=pair.pair_id, is_genuine=pair.is_genuine,
                          status="error", map_sha256=None,
                          values=tuple((m, None) for m in metrics))


def run_metric_stage(ctx: RunContext) -> None:
    """Compute the declared metrics (``[metric_validity]``; nothing when no ``truth_tracking``
    family is declared) on the run's shared inputs.

    The maps come from the run's own attribution path (fixed chunks; a failing pair is
    retried alone and, if it fails again, gets an ``error`` row without values, as its record
    is ``error:<type>``)."""
    from faceattr.experiments.context import ranked_maps
    from faceattr.experiments.method_records import attribute_pairs
    from faceattr.validity.metrics import evaluate_maps

    protocol, model = ctx.protocol, ctx.model
    spec = protocol.metric_validity
    methods = family_methods(protocol)
    assert spec is not None  # the pipeline runs a stage only when it is declared
    if not methods:
        return
    every = ctx.pairs
    pairs = sorted((every[i] for i in spread_rows(len(every), spec.n_pairs)),
                   key=lambda p: p.pair_id)
    inputs, batch = ctx.batch(pairs)
    settings = spec.settings(protocol.execution.forward_chunk)
    rows: list[MetricValueRow] = []
    for method in ctx.methods():
        if method.method_id not in methods:
            continue
        attributed = attribute_pairs(method, batch)
        maps = ranked_maps(protocol, method.method_id, attributed.details.maps)
        results = evaluate_maps(model, inputs, maps, method_id=method.method_id,
                                seed=protocol.seed, settings=settings)
        rows += [_error_row(pairs[i], method.method_id, spec.metrics)
                 if i in attributed.failures else
                 _row(r, map_stats(maps[i]).sha256, spec.metrics)
                 for i, r in enumerate(results)]
    rows.sort(key=lambda r: (methods.index(r.method), r.pair_id))
    write_metric_values(ctx.folder.root, MetricValuesResult(
        n_pairs=len(pairs), pair_ids=tuple(p.pair_id for p in pairs), methods=methods,
        metrics=spec.metrics, settings=settings.to_json(), rows=tuple(rows)))
