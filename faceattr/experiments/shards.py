"""Merge the shards of a run into one run folder, byte-identical to an unsharded run."""

from __future__ import annotations

from pathlib import Path

from faceattr.experiments.folder import RunFolder, load_records, prepare_folder, write_records
from faceattr.experiments.run import (
    Shard,
    comparison_stage,
    determinism_stage,
    finalize_run,
    randomisation_stage,
)
from faceattr.io import read_json, write_json
from faceattr.protocol import Protocol
from faceattr.records import PairRecord

__all__ = ["merge_shards"]


def merge_shards(protocol: Protocol, reports_dir: Path, *, count: int,
                 threads: int = 1) -> RunFolder:
    """Combine shards ``0..count-1`` of the protocol's run.

    Every shard must be complete and carry the same manifest; records are put in the
    canonical order (manifest pair order, then method id) and the summary is computed from
    them exactly as for an unsharded run.
    """
    folder = RunFolder(reports_dir / protocol.run_name)
    prepare_folder(folder, protocol)
    shards = [Shard(i, count).folder(folder.root) for i in range(count)]
    missing = [str(s.root) for s in shards if not s.shard_done.exists()]
    if missing:
        raise ValueError(f"cannot merge: incomplete shard(s) {', '.join(missing)}; run "
                         f"`faceattr run PROTOCOL --shard i/{count}` for each first")
    manifest = read_json(shards[0].manifest)
    for shard in shards[1:]:
        if read_json(shard.manifest) != manifest:
            raise ValueError(f"cannot merge: {shard.root} has a different manifest")
    order = {row["pair_id"]: i for i, row in enumerate(manifest["pairs"])}
    records: list[PairRecord] = [r for s in shards for r in load_records(s)]
    records.sort(key=lambda r: (order[r.pair_id], r.method))
    seen = {(r.pair_id, r.method) for r in records}
    if len(seen) != len(records) or len({r.pair_id for r in records}) != len(order):
        raise ValueError("cannot merge: shards overlap or miss pairs")
    write_json(folder.manifest, manifest)
    write_records(folder, records)
    weights = {read_json(s.shard_done)["weights_sha256"] for s in shards}
    if len(weights) != 1:
        raise ValueError("cannot merge: shards were run with different model weights")
    wall_s = sum(float(read_json(s.timing)["wall_s"]) for s in shards)
    write_json(folder.timing, {"wall_s": wall_s, "merged_shards": count})
    randomisation_stage(folder, protocol)
    determinism_stage(folder, protocol, threads)
    finalize_run(folder, protocol, manifest, records, weights_sha256=weights.pop(),
                 threads=threads)
    comparison_stage(folder, protocol)
    return folder
