"""What the gate does after a run, shared by the pytest plugin and the Python API.

:func:`run_artefacts` assembles what claims are judged on; :func:`write_verdicts` writes
``claims.json``, ``validity.json`` and ``report.html`` under the run folder's lock, each
recorded in its artefact ledger; :func:`write_not_evaluated` does the same for a run stopped by
its model gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faceattr.claims import ClaimResult, RunArtefacts
from faceattr.claims.ledger import claims_document, write_claims
from faceattr.claims.validity import declared_families
from faceattr.experiments.pipeline import stage_results
from faceattr.integrity import record_artefacts, run_lock
from faceattr.protocol import Protocol
from faceattr.report import render_report
from faceattr.runfolder.folder import RunFolder, load_records
from faceattr.runfolder.summary import RunSummary
from faceattr.validity.dose_response import write_validity
from faceattr.validity.metric_artefact import load_metric_values
from faceattr.validity.metric_section import metric_validity_section

__all__ = ["run_artefacts", "write_not_evaluated", "write_verdicts"]


def run_artefacts(protocol: Protocol, folder: RunFolder, summary: RunSummary) -> RunArtefacts:
    """The run's summary, records and every judged stage's result, with the protocol's
    claims (the stages and their loaders: :data:`faceattr.experiments.pipeline.STAGES`)."""
    return RunArtefacts(summary=summary, records=load_records(folder), claims=protocol.claims,
                        **stage_results(folder.root))


def _write_validity(protocol: Protocol, folder: RunFolder, summary: RunSummary) -> None:
    """Every outcome against the truth for the families the truth_tracking claims declare."""
    try:
        families = declared_families(protocol.claims, set(summary.methods))
    except ValueError:  # an invalid claim is already reported as that claim's error
        return
    records = load_records(folder)
    values = load_metric_values(folder.root)
    section = None if values is None or not families else \
        metric_validity_section(records, values, families, seed=summary.seed)
    if write_validity(folder.root, records, families, seed=summary.seed,
                      metric_validity=section):
        record_artefacts(folder.root, "validity.json")


def write_verdicts(protocol: Protocol, folder: RunFolder, summary: RunSummary,
                   results: Mapping[str, ClaimResult],
                   errors: Mapping[str, str]) -> tuple[dict[str, Any], Path]:
    """Write claims.json, validity.json and the report; return the claims document and the
    report's path."""
    document = claims_document(summary.run_name, protocol.content_sha256,
                               [s.id for s in protocol.claims], results, errors)
    with run_lock(folder.root):
        write_claims(folder.claims, document)
        record_artefacts(folder.root, "claims.json")
        _write_validity(protocol, folder, summary)
        report = render_report(folder.root)
    return document, report


def write_not_evaluated(protocol: Protocol, root: Path, why: str) -> tuple[dict[str, Any], Path]:
    """claims.json with every claim "not evaluated" (``why``) and the failed-gate report."""
    folder = RunFolder(root)
    document = claims_document(root.name, protocol.content_sha256,
                               [s.id for s in protocol.claims], {}, {}, not_evaluated=why)
    with run_lock(root):
        write_claims(folder.claims, document)
        record_artefacts(root, "claims.json")
        report = render_report(root)
    return document, report
