"""A run as a pipeline of stages over one :class:`~faceattr.experiments.context.RunContext`.

records -> randomisation -> artefacts -> metric validity -> partner sensitivity -> strata ->
determinism -> summary -> comparison. Each :class:`Stage` declares, once, the artefact file it
writes, the protocol table that asks for it, the :class:`~faceattr.claims.RunArtefacts` field
its result fills, ``run(ctx)`` and ``load(root)``. The run (:mod:`faceattr.experiments.run`),
a merge of shards, and the gate (:func:`stage_results`, which assembles what claims are judged
on) iterate over :data:`STAGES` instead of knowing each stage. A stage runs when its table is
declared and its file does not exist yet (a resumed run does not redo it); after each, the
new files' hashes are recorded in the folder's ledger.

The records themselves are made by the executor loop in :mod:`faceattr.experiments.run`
(checkpointed per batch, resumable, sharded); ``validity.json`` and ``claims.json`` are
written by the gate after judging (:mod:`faceattr.gate.judging`), since they depend on the
claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceattr.experiments.context import RunContext
from faceattr.experiments.stages import (
    artefact_stage,
    comparison_stage,
    determinism_stage,
    metric_validity_stage,
    partner_sensitivity_stage,
    randomisation_stage,
    strata_stage,
)
from faceattr.integrity import record_new_files
from faceattr.io import read_json
from faceattr.protocol import Protocol

__all__ = ["STAGES", "Stage", "run_pipeline", "stage_results"]


@dataclass(frozen=True)
class Stage:
    """One stage of a run after its records.

    Attributes
    ----------
    name : str
        The stage's name (as in the report and the ledger).
    artefact : str
        The file it writes in the run folder (its presence means the stage is done).
    table : str or None
        The protocol table that declares it (``Protocol`` attribute); None: always runs.
    result_field : str or None
        The :class:`~faceattr.claims.RunArtefacts` field :attr:`load` fills; None: not judged.
    run : callable
        ``run(ctx)``: compute and write :attr:`artefact`.
    load : callable
        ``load(run_root)``: the typed result, or None when the file is absent.
    """

    name: str
    artefact: str
    table: str | None
    result_field: str | None
    run: Callable[[RunContext], None]
    load: Callable[[Path], Any]

    def declared(self, protocol: Protocol) -> bool:
        """Whether the protocol asks for this stage."""
        return self.table is None or getattr(protocol, self.table) is not None


def _load_randomisation(root: Path) -> Any:
    from faceattr.randomisation.stage import load_randomisation

    return load_randomisation(root)


def _load_artefacts(root: Path) -> Any:
    from faceattr.experiments.artefact_stage import load_artefacts

    return load_artefacts(root)


def _load_metric_values(root: Path) -> Any:
    from faceattr.validity.metric_artefact import load_metric_values

    return load_metric_values(root)


def _load_partner(root: Path) -> Any:
    from faceattr.randomisation.partner import load_partner_sensitivity

    return load_partner_sensitivity(root)


def _load_strata(root: Path) -> Any:
    from faceattr.experiments.strata_stage import load_strata

    return load_strata(root)


def _load_determinism(root: Path) -> Any:
    from faceattr.experiments.determinism import load_determinism

    return load_determinism(root)


def _load_comparison(root: Path) -> Any:
    path = root / "comparison.json"
    return read_json(path) if path.exists() else None


def _load_summary(root: Path) -> Any:
    from faceattr.runfolder.folder import RunFolder, load_summary

    return load_summary(RunFolder(root)) if (root / "summary.json").exists() else None


def _summary_stage(ctx: RunContext) -> None:
    from faceattr.experiments.summarise import finalize_run
    from faceattr.runfolder.folder import load_records

    finalize_run(ctx.folder, ctx.protocol, load_records(ctx.folder))


#: Every stage after the records, in the order a run runs them.
STAGES: tuple[Stage, ...] = (
    Stage("randomisation", "randomisation.json", "randomisation", "randomisation",
          randomisation_stage, _load_randomisation),
    Stage("artefacts", "artefacts.json", "artefacts", "artefacts", artefact_stage,
          _load_artefacts),
    Stage("metric_validity", "metric_values.json", "metric_validity", "metric_values",
          metric_validity_stage, _load_metric_values),
    Stage("partner_sensitivity", "partner_sensitivity.json", "partner_sensitivity",
          "partner_sensitivity", partner_sensitivity_stage, _load_partner),
    Stage("strata", "strata.json", "strata", "strata", strata_stage, _load_strata),
    Stage("determinism", "determinism.json", "determinism", "determinism", determinism_stage,
          _load_determinism),
    Stage("summary", "summary.json", None, None, _summary_stage, _load_summary),
    Stage("comparison", "comparison.json", "baseline", "comparison", comparison_stage,
          _load_comparison),
)


def run_pipeline(ctx: RunContext, stages: Sequence[Stage] = STAGES) -> None:
    """Run every declared stage whose artefact is not there yet, recording each new file."""
    root = ctx.folder.root
    for stage in stages:
        if stage.declared(ctx.protocol) and not (root / stage.artefact).exists():
            stage.run(ctx)
        record_new_files(root)


def stage_results(root: Path) -> dict[str, Any]:
    """``RunArtefacts`` field -> the typed result of every judged stage (None when absent)."""
    return {stage.result_field: stage.load(root) for stage in STAGES
            if stage.result_field is not None}
