"""The summary stage: ``summary.json`` of a complete run, computed from its records only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceattr.experiments.gate import model_gate
from faceattr.experiments.identity import read_identity
from faceattr.integrity import record_new_files
from faceattr.protocol import Protocol
from faceattr.records import PairRecord
from faceattr.runfolder.folder import RunFolder, write_summary
from faceattr.runfolder.summary import RunSummary, summarise_method

__all__ = ["finalize_run"]


def finalize_run(folder: RunFolder, protocol: Protocol, records: Sequence[PairRecord]) -> None:
    """Write the summary of a complete run, from its records only, and record it."""
    by_pair: dict[str, PairRecord] = {}
    for record in records:
        by_pair.setdefault(record.pair_id, record)
    scores = np.array([by_pair[p].score_clean for p in sorted(by_pair)], dtype=np.float64)
    labels = np.array([by_pair[p].is_genuine for p in sorted(by_pair)])
    gate = model_gate(protocol.model.name, scores, labels, min_auc=protocol.model.min_auc)
    method_ids = sorted({r.method for r in records})
    identity = read_identity(folder.root)
    summary = RunSummary(
        run_name=folder.root.name, protocol_sha256=protocol.content_sha256,
        manifest_sha256=str(identity["manifest_sha256"]), seed=protocol.seed,
        n_pairs=len(by_pair), gate=gate,
        methods={m: summarise_method([r for r in records if r.method == m],
                                     alpha=protocol.alpha,
                                     interval_method=protocol.interval_method)
                 for m in method_ids})
    write_summary(folder, summary)
    record_new_files(folder.root)
