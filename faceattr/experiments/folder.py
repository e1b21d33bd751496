"""A run folder and its artefacts, each validated against its schema on write and on read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceattr.experiments.schema import validate_artefact
from faceattr.experiments.summary import RunSummary
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

__all__ = ["RunFolder", "append_record", "load_records", "load_summary", "prepare_folder",
           "write_records", "write_summary"]


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
