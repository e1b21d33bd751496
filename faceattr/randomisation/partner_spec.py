"""``[partner_sensitivity]``: the protocol table of the partner-sensitivity stage."""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.config import TableReader
from faceattr.randomisation.similarity import METRICS, Metric

__all__ = ["PartnerSensitivitySpec", "read_partner_sensitivity"]


@dataclass(frozen=True, slots=True)
class PartnerSensitivitySpec:
    """``[partner_sensitivity]`` (optional): re-explain ``n_pairs`` genuine pairs (evenly spread
    over the run's genuine pairs) against a random impostor partner and compare each pair's two
    maps by ``metric`` (:mod:`faceattr.randomisation.partner`)."""

    n_pairs: int
    metric: Metric
    topk_frac: float


def read_partner_sensitivity(reader: TableReader) -> PartnerSensitivitySpec:
    """Parse ``n_pairs``, ``metric`` (default ``"spearman_abs"``) and ``topk_frac`` (only with
    ``metric = "topk"``, default 0.1)."""
    n_pairs = reader.integer("n_pairs", minimum=1, maximum=100_000)
    metric = reader.text("metric", default="spearman_abs", allowed=list(METRICS))
    topk_frac = reader.fraction("topk_frac", default=0.1, open_low=True, maximum=0.5) \
        if metric == "topk" else 0.1
    reader.finish()
    return PartnerSensitivitySpec(n_pairs=n_pairs, metric=metric,  # type: ignore[arg-type]
                                  topk_frac=topk_frac)
