"""A run folder and its artefacts, each validated against its schema on write and on read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceattr.errors import IntegrityError
from faceattr.integrity import verify_artefacts
from faceattr.io import (
    append_jsonl_line,
    atomic_write_text,
    dumps_strict,
    read_json,
    read_jsonl,
    write_json,
)
from faceattr.protocol import Protocol
from faceattr.records import PairRecord
from faceattr.runfolder.schema import validate_artefact
from faceattr.runfolder.summary import RunSummary

__all__ = ["RunFolder", "append_record", "check_summary_against_records", "load_records",
           "load_summary", "prepare_folder", "record_line", "verify_run", "write_records",
           "write_summary"]

#: The artefacts every complete run folder must have recorded in its ledger.
REQUIRED = ("protocol.json", "identity.json", "manifest.json", "records.jsonl", "summary.json")


@dataclass(frozen=True, slots=True)
class RunFolder:
    """Paths of one run's artefacts (a complete run, or one shard of it)."""

    root: Path

    @property
    def protocol(self) -> Path:
        """The protocol's canonical content."""
        return self.root / "protocol.json"

    @property
    def manifest(self) -> Path:
        """The pair manifest."""
        return self.root / "manifest.json"

    @property
    def records(self) -> Path:
        """Per-pair records (JSONL, one line per pair x method, flushed per line)."""
        return self.root / "records.jsonl"

    @property
    def summary(self) -> Path:
        """The run summary (written last: its presence marks a complete run)."""
        return self.root / "summary.json"

    @property
    def shard_done(self) -> Path:
        """Marker of a complete shard."""
        return self.root / "shard.json"

    @property
    def provenance(self) -> Path:
        """Deterministic provenance."""
        return self.root / "provenance.json"

    @property
    def timing(self) -> Path:
        """Wall-clock timings (not deterministic)."""
        return self.root / "timing.json"

    @property
    def claims(self) -> Path:
        """Claim verdicts written by the validation suite."""
        return self.root / "claims.json"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.root / "report.html"


def prepare_folder(folder: RunFolder, protocol: Protocol) -> None:
    """Create the folder, or check that it holds a run of this very protocol."""
    folder.root.mkdir(parents=True, exist_ok=True)
    if folder.protocol.exists():
        if folder.protocol.read_text(encoding="utf-8") != protocol.content:
            raise ValueError(f"{folder.root} holds a run of a different protocol; refusing to "
                             "overwrite it (move it away or use another --reports-dir)")
    else:
        atomic_write_text(folder.protocol, protocol.content)


def record_line(record: PairRecord, where: str) -> str:
    """One record as a validated JSONL line (with its newline)."""
    row = record.to_json()
    validate_artefact("record", row, where)
    return dumps_strict(row) + "\n"


def append_record(folder: RunFolder, record: PairRecord) -> None:
    """Validate one record against the schema and append it (flushed)."""
    row = record.to_json()
    validate_artefact("record", row, str(folder.records))
    append_jsonl_line(folder.records, row)


def write_records(folder: RunFolder, records: Sequence[PairRecord]) -> None:
    """Replace the records file atomically (resume truncation, shard merge)."""
    rows = [r.to_json() for r in records]
    for row in rows:
        validate_artefact("record", row, str(folder.records))
    atomic_write_text(folder.records, "".join(dumps_strict(row) + "\n" for row in rows))


def load_records(folder: RunFolder) -> list[PairRecord]:
    """Read every record of a run, validated against the schema and the record type."""
    if not folder.records.exists():
        return []
    records: list[PairRecord] = []
    for number, row in enumerate(read_jsonl(folder.records), start=1):
        validate_artefact("record", row, f"{folder.records}:{number}")
        records.append(PairRecord.from_json(row))
    return records


def write_summary(folder: RunFolder, summary: RunSummary) -> None:
    """Validate and write the summary (last, atomically)."""
    document = summary.to_json()
    validate_artefact("summary", document, str(folder.summary))
    write_json(folder.summary, document)


def load_summary(folder: RunFolder) -> RunSummary:
    """Read a complete run's summary, validated."""
    document = read_json(folder.summary)
    validate_artefact("summary", document, str(folder.summary))
    return RunSummary.from_json(document)


def check_summary_against_records(summary: RunSummary, records: Sequence[PairRecord],
                                  where: str) -> None:
    """The summary's per-method ledger and FR counts must be those of the records.

    Raises
    ------
    IntegrityError
        One line naming the method and the counts that disagree.
    """
    methods = sorted({r.method for r in records})
    if methods != sorted(summary.methods):
        raise IntegrityError(f"{where}: summary.json has methods {sorted(summary.methods)} but "
                             f"records.jsonl has {methods}; re-run with --force-rerun")
    for method in methods:
        mine = [r for r in records if r.method == method]
        counted = {"n_pairs": len(mine), "n_valid": sum(r.status == "valid" for r in mine),
                   "n_trivial": sum(r.status == "trivial" for r in mine),
                   "n_error": sum(r.status.startswith("error:") for r in mine),
                   "fr_itt.count": sum(r.falsified for r in mine)}
        entry = summary.methods[method]
        stated = {"n_pairs": entry.n_pairs, "n_valid": entry.n_valid,
                  "n_trivial": entry.n_trivial, "n_error": entry.n_error,
                  "fr_itt.count": entry.fr_itt.count}
        if counted != stated:
            wrong = ", ".join(f"{k} {stated[k]} vs {counted[k]}" for k in counted
                              if counted[k] != stated[k])
            raise IntegrityError(f"{where}: summary.json disagrees with records.jsonl for "
                                 f"{method} ({wrong}); re-run with --force-rerun")
    pair_ids = [r.pair_id for r in records if r.method == methods[0]] if methods else []
    if len(set(pair_ids)) != len(pair_ids) or len(pair_ids) != summary.n_pairs:
        raise IntegrityError(f"{where}: records.jsonl holds {len(pair_ids)} records "
                             f"({len(set(pair_ids))} distinct pairs) per method, the summary "
                             f"{summary.n_pairs} pairs; re-run with --force-rerun")


def verify_run(folder: RunFolder) -> None:
    """Verify a finished folder before it is trusted: every recorded hash, and for a
    complete run the summary against the records.

    Raises
    ------
    IntegrityError
        An artefact was edited after the run, or the summary disagrees with the records.
    """
    root = folder.root
    if folder.summary.exists():
        verify_artefacts(root, required=REQUIRED)
        check_summary_against_records(load_summary(folder), load_records(folder), str(root))
    else:
        verify_artefacts(root, required=REQUIRED[:3])
