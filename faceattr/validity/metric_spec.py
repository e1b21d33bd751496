"""``[metric_validity]``: which evaluation metrics the run computes, on how many pairs.

::

    [metric_validity]
    n_pairs = 20                     # pairs spread over the run (genuine and impostor alike)
    metrics = ["deletion_auc", "insertion_auc", "road_morf_area", "road_lerf_area",
               "road_gap", "faithfulness_correlation", "pixel_flipping_area"]   # default: all
    n_steps = 10                     # deletion / insertion steps
    fill = "mean"                    # deletion and faithfulness fill (default: the
                                     # falsification fill; ``nli`` is ROAD's, never a whole image)

The metrics are computed on the maps of every family a ``truth_tracking`` claim declares, on
the same maps and pairs as the falsification test (:mod:`faceattr.experiments.metric_stage`);
the report's ``metric_validity`` section and the ``metric_tracks_truth`` claim rank them.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.config import ProtocolError, TableReader
from faceattr.validity.metrics import METRICS, MetricSettings

__all__ = ["MetricValiditySpec", "read_metric_validity"]

_NLI = "nli"


@dataclass(frozen=True, slots=True)
class MetricValiditySpec:
    """The parsed ``[metric_validity]`` table."""

    n_pairs: int
    metrics: tuple[str, ...]
    n_steps: int
    fill: str

    def settings(self, forward_chunk: int) -> MetricSettings:
        """The metrics' settings (deletion and faithfulness filled with ``fill``)."""
        return MetricSettings(n_steps=self.n_steps, deletion_fill=self.fill,
                              faithfulness_fill=self.fill, forward_chunk=forward_chunk)


def read_metric_validity(reader: TableReader, falsification_fill: str) -> MetricValiditySpec:
    """Parse and validate the table (one-line :class:`ProtocolError` on bad input)."""
    names = [m.name for m in METRICS]
    default_fill = "mean" if falsification_fill == _NLI else falsification_fill
    metrics = reader.texts("metrics", default=names, allowed=names)
    spec = MetricValiditySpec(
        n_pairs=reader.integer("n_pairs", minimum=3, maximum=100_000),
        metrics=tuple(m for m in names if m in set(metrics)),
        n_steps=reader.integer("n_steps", default=MetricSettings().n_steps, minimum=1,
                               maximum=1000),
        fill=reader.text("fill", default=default_fill))
    reader.finish()
    if not spec.metrics:
        raise ProtocolError(f"{reader.where}: declare at least one metric")
    try:
        spec.settings(forward_chunk=1)
    except ValueError as exc:
        raise ProtocolError(f"{reader.where}: {exc}") from None
    return spec
