"""Merge the shards of a run into one run folder, byte-identical to an unsharded run."""

from __future__ import annotations

from pathlib import Path

from faceattr.errors import InputError
from faceattr.experiments.context import PreparedRun, RunContext
from faceattr.experiments.pipeline import run_pipeline
from faceattr.experiments.run import Shard, clear_folder, prepare_run, start_folder
from faceattr.integrity import record_artefacts, run_lock
from faceattr.io import read_json, write_json
from faceattr.protocol import Protocol
from faceattr.records import PairRecord
from faceattr.runfolder.folder import RunFolder, load_records, verify_run, write_records

__all__ = ["merge_shards"]


def _merged_records(prepared: PreparedRun, shards: list[RunFolder]) -> list[PairRecord]:
    rows: list[dict[str, object]] = prepared.manifest["pairs"]  # type: ignore[assignment]
    order = {str(row["pair_id"]): i for i, row in enumerate(rows)}
    records: list[PairRecord] = [r for s in shards for r in load_records(s)]
    records.sort(key=lambda r: (order[r.pair_id], r.method))
    seen = {(r.pair_id, r.method) for r in records}
    if len(seen) != len(records) or len({r.pair_id for r in records}) != len(order):
        raise InputError("cannot merge: shards overlap or miss pairs")
    return records


def merge_shards(protocol: Protocol, reports_dir: Path, *, count: int,
                 threads: int = 1) -> RunFolder:
    """Combine shards ``0..count-1`` of the protocol's run.

    Every shard must be complete, verify against its own ledger and carry this run's
    manifest; records are put in the canonical order (manifest pair order, then method id)
    and the summary is computed from them exactly as for an unsharded run.
    """
    prepared = prepare_run(protocol, reports_dir)
    folder = RunFolder(prepared.root)
    shards = [Shard(i, count).folder(folder.root) for i in range(count)]
    missing = [str(s.root) for s in shards if not s.shard_done.exists()]
    if missing:
        raise InputError(f"cannot merge: incomplete shard(s) {', '.join(missing)}; run "
                         f"`faceattr run PROTOCOL --shard i/{count}` for each first")
    with run_lock(folder.root):
        for shard in shards:
            verify_run(shard)
            if read_json(shard.manifest) != prepared.manifest:
                raise InputError(f"cannot merge: {shard.root} has another manifest than this "
                                 "run's data; re-run that shard")
        if folder.summary.exists():
            verify_run(folder)
            return folder
        clear_folder(folder.root, keep=("shards",))  # an interrupted merge starts over
        start_folder(folder, prepared, threads=threads, lineage=None)
        write_records(folder, _merged_records(prepared, shards))
        wall_s = sum(float(read_json(s.timing)["wall_s"]) for s in shards)
        write_json(folder.timing, {"wall_s": wall_s, "merged_shards": count})
        record_artefacts(folder.root, "records.jsonl", "timing.json")
        run_pipeline(RunContext(prepared, folder, threads))
    return folder
