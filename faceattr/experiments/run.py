"""Run a protocol end to end into a run folder: identified, locked, verified, resumable.

protocol -> pairs (manifest) -> model (gate) -> attribution -> falsification -> records
-> summary. The folder ``reports/<name>-<identity hash>/`` is named by everything that can
change a result (:mod:`faceattr.experiments.identity`): it is reused or resumed only when all of
it is unchanged, written under an exclusive lock, and every artefact's SHA-256 is recorded in
``provenance.json`` when written and verified before reuse (:mod:`faceattr.integrity`).

Artefacts: ``protocol.json``, ``identity.json``, ``manifest.json``, ``records.jsonl`` (flushed
per line, checkpointed per batch), ``summary.json``, ``provenance.json`` (versions, hashes,
the artefact ledger), ``timing.json`` (wall-clock times), ``gate.json`` (only when the model
gate failed: no attribution is trusted), ``lineage.json`` (the previous run of the same protocol
name and what differs). A shard ``i/n`` runs pairs ``i, i + n, ...`` into
``<run>/shards/<i>-of-<n>/``; :func:`faceattr.experiments.shards.merge_shards` combines them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from faceattr.calibration.calibrate import check_calibrated
from faceattr.data.pairs import LoadedImage, Pair, build_manifest, image_hashes
from faceattr.data.pairs import manifest_sha256 as _manifest_sha256
from faceattr.devices import (
    device_session,
    device_settings,
    identity_device,
    resolve_device,
)
from faceattr.errors import GateFailedError, InputError, IntegrityError
from faceattr.experiments.context import (
    PreparedRun,
    RunContext,
    build_model,
    build_source,
    load_images,
)
from faceattr.experiments.executor import Executor, SerialExecutor
from faceattr.experiments.gate import model_gate
from faceattr.experiments.identity import (
    IDENTITY_FILE,
    RunIdentity,
    git_state,
    identity_diff,
    previous_runs,
    read_identity,
)
from faceattr.experiments.pipeline import run_pipeline
from faceattr.experiments.provenance import provenance
from faceattr.falsification import PairInputs
from faceattr.falsification.engine import clean_scores
from faceattr.integrity import (
    LOCK_FILE,
    PROVENANCE_FILE,
    check_safe_name,
    confined_path,
    record_artefacts,
    record_new_files,
    record_prefix,
    run_lock,
    verified_prefix,
    verify_artefacts,
)
from faceattr.io import atomic_write_text, read_json, write_json
from faceattr.models.base import VerificationModel
from faceattr.protocol import Protocol
from faceattr.records import PairRecord
from faceattr.runfolder.folder import (
    RunFolder,
    load_records,
    load_summary,
    prepare_folder,
    record_line,
    verify_run,
)
from faceattr.runfolder.summary import GateResult

__all__ = [
    "GATE_FILE",
    "GateFailedError",
    "RunFolder",
    "Shard",
    "clear_folder",
    "gate_failure",
    "load_records",
    "load_summary",
    "prepare_run",
    "resolve_run_folder",
    "run_protocol",
    "start_folder",
]

GATE_FILE = "gate.json"
LINEAGE_FILE = "lineage.json"
RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``: the pairs at positions ``index::count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"i/n"``."""
        try:
            index, count = (int(part) for part in text.split("/"))
            return cls(index, count)
        except ValueError:
            raise InputError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/3"
                             ) from None

    def folder(self, run_root: Path) -> RunFolder:
        """The shard's folder inside the run folder."""
        return RunFolder(run_root / "shards" / f"{self.index}-of-{self.count}")


def _check_names(protocol: Protocol, pairs: Sequence[Pair]) -> None:
    check_safe_name("protocol name", protocol.name)
    for method in protocol.methods:
        check_safe_name("method id", method.id)
    for pair in pairs:
        check_safe_name(f"pair id (source {protocol.data.source!r})", pair.pair_id)


def _check_input_size(protocol: Protocol, model: VerificationModel,
                      images: dict[str, LoadedImage]) -> None:
    expected = (3, model.input_size_px, model.input_size_px)
    for image_id, image in images.items():
        if tuple(image.image.shape) != expected:
            raise InputError(f"[data] images are {tuple(image.image.shape)} (e.g. {image_id!r}) "
                             f"but model {model.name!r} takes {expected}; set [data] size_px = "
                             f"{model.input_size_px} (and the matching alignment)")


def prepare_run(protocol: Protocol, reports_dir: Path, *, shard: Shard | None = None,
                limit_pairs: int | None = None) -> PreparedRun:
    """Load pairs, images and model and compute the run's identity and folder.

    The folder lies inside ``reports_dir`` (a name that would escape it is refused).
    """
    source = build_source(protocol)
    pairs = source.pairs()[:limit_pairs]
    _check_names(protocol, pairs)
    mine = pairs[shard.index::shard.count] if shard else pairs
    images = load_images(source, mine)
    manifest = build_manifest(source, pairs, image_hashes(source, pairs, images))
    model = build_model(protocol)
    _check_input_size(protocol, model, images)
    if limit_pairs is None:  # Theorem 3.5's thresholds; a first-n re-run (the determinism
        # stage's, reseeded or reordered) belongs to a run whose thresholds were checked
        check_calibrated(protocol, model.weights_sha256, pairs)
    identity = RunIdentity.current(protocol_sha256=protocol.content_sha256,
                                   weights_sha256=model.weights_sha256,
                                   manifest_sha256=_manifest_sha256(manifest),
                                   device=run_device(protocol))
    name = identity.folder_name(protocol.name)
    if limit_pairs is not None:
        name += f"-first{limit_pairs}"
    return PreparedRun(protocol=protocol, source=source, pairs=pairs, mine=mine, images=images,
                       manifest=manifest, model=model, identity=identity,
                       root=confined_path(reports_dir, name))


def run_device(protocol: Protocol) -> str:
    """The identity's device: the kind and model of the device, and the memory format when it
    is not the default (``"cpu+channels_last"``): both move the last float bits."""
    device = identity_device(resolve_device(protocol.execution.device))
    fmt = protocol.execution.memory_format
    return device if fmt == "contiguous" else f"{device}+{fmt}"


def resolve_run_folder(protocol: Protocol, reports_dir: Path) -> RunFolder:
    """The folder a run of ``protocol`` has with the code, weights and data at hand."""
    return RunFolder(prepare_run(protocol, reports_dir).root)


# --- attribution and records ------------------------------------------------------------------


class _RecordsLog:
    """``records.jsonl``: appended per line, checkpointed (hash of the prefix) per batch."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        path = folder.records
        n_bytes = verified_prefix(folder.root, RECORDS_FILE)
        data = path.read_bytes()[:n_bytes] if path.exists() else b""
        if not path.exists() or path.stat().st_size != n_bytes:
            atomic_write_text(path, data.decode("utf-8"))  # cut an unrecorded tail
        self.digest = hashlib.sha256(data)
        self.n_bytes = n_bytes
        self.n_lines = data.count(b"\n")

    def append(self, records: Sequence[PairRecord]) -> None:
        lines = "".join(record_line(r, str(self.folder.records)) for r in records)
        data = lines.encode("utf-8")
        with self.folder.records.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.digest.update(data)
        self.n_bytes += len(data)
        self.n_lines += len(records)
        record_prefix(self.folder.root, RECORDS_FILE, self.digest.hexdigest(), self.n_bytes)


def _process(folder: RunFolder, prepared: PreparedRun,
             embeddings: dict[str, NDArray[np.float32]], progress: bool,
             executor: Executor | None = None) -> int:
    methods = RunContext(prepared, folder).methods()
    log = _RecordsLog(folder)
    n_done = log.n_lines // len(methods)
    if n_done * len(methods) != log.n_lines:
        raise IntegrityError(f"{folder.records}: its checkpoint holds {log.n_lines} lines, not a "
                             f"multiple of {len(methods)} methods; re-run with --force-rerun")
    todo = prepared.mine[n_done:]
    # the executor computes (pair batch x method) tasks; the log writes them in canonical order
    for batch_records in (executor or SerialExecutor()).batches(prepared, todo, embeddings,
                                                                progress=progress):
        log.append(batch_records)
    return n_done


# --- the gate ---------------------------------------------------------------------------------


def _gate(model: VerificationModel, pairs: Sequence[Pair],
          embeddings: dict[str, NDArray[np.float32]], min_auc: float) -> GateResult:
    inputs = PairInputs(pairs=pairs, probes=np.zeros((0, 3, 1, 1), dtype=np.float32),
                        probe_embeddings=np.stack([embeddings[p.image_a] for p in pairs]),
                        partner_embeddings=np.stack([embeddings[p.image_b] for p in pairs]))
    return model_gate(model.name, clean_scores(inputs),
                      np.array([p.is_genuine for p in pairs]), min_auc=min_auc)


def gate_message(gate: GateResult) -> str:
    """``model gate failed (AUC 0.7100 < 0.95 on 40 pairs)``."""
    return (f"model gate failed: {gate.model} AUC {gate.auc:.4f} < {gate.min_auc:g} on "
            f"{gate.n_genuine + gate.n_impostor} pairs; attributions of a model that does not "
            "verify faces are not trusted")


def gate_failure(root: Path) -> GateResult | None:
    """The failed gate of a run folder (``gate.json``), or None when it has none."""
    path = root / GATE_FILE
    return GateResult(**read_json(path)) if path.exists() else None


# --- the folder -------------------------------------------------------------------------------


def clear_folder(root: Path, *, keep: tuple[str, ...] = ()) -> None:
    """Delete a run folder's contents (never its lock, nor the names in ``keep``)."""
    for child in root.iterdir():
        if child.name.startswith(LOCK_FILE) or child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _lineage(prepared: PreparedRun, reports_dir: Path) -> dict[str, object] | None:
    previous = previous_runs(reports_dir, prepared.protocol.name, exclude=prepared.root.name)
    if not previous:
        return None
    before = read_identity(previous[0])
    return {"previous_run": previous[0].name,
            "differences": identity_diff(before, prepared.identity.to_json()),
            "compare": f"faceattr compare {previous[0]} {prepared.root}"}


def start_folder(folder: RunFolder, prepared: PreparedRun, *, threads: int,
                 lineage: dict[str, object] | None) -> None:
    """Write the identity, manifest and provenance of a new run and record their hashes."""
    prepare_folder(folder, prepared.protocol)
    root = folder.root
    write_json(root / IDENTITY_FILE, prepared.identity.to_json())
    write_json(folder.manifest, prepared.manifest)
    commit, dirty = git_state()
    document = provenance(protocol_sha256=prepared.protocol.content_sha256,
                          manifest_sha256=prepared.identity.manifest_sha256,
                          seed=prepared.protocol.seed, model=prepared.model.name,
                          weights_sha256=prepared.model.weights_sha256, threads=threads,
                          device=device_settings(resolve_device(
                              prepared.protocol.execution.device)).to_json())
    document |= {"git_commit": commit, "git_dirty": dirty,
                 "identity_sha256": prepared.identity.sha256, "artefacts": {}}
    write_json(root / PROVENANCE_FILE, document)
    if lineage is not None:
        write_json(root / LINEAGE_FILE, lineage)
    record_new_files(root)


def _check_resumable(folder: RunFolder, prepared: PreparedRun) -> None:
    verify_artefacts(folder.root, required=("protocol.json", IDENTITY_FILE, "manifest.json"),
                     growing=(RECORDS_FILE,))
    prepare_folder(folder, prepared.protocol)
    if read_identity(folder.root) != prepared.identity.to_json():
        raise IntegrityError(f"{folder.root / IDENTITY_FILE}: differs from this run's identity "
                             "(edited after the run); re-run with --force-rerun")


def run_protocol(protocol: Protocol, reports_dir: Path, *, threads: int = 1,
                 progress: bool = True, shard: Shard | None = None,
                 limit_pairs: int | None = None, force_rerun: bool = False,
                 executor: Executor | None = None) -> RunFolder:
    """Run (or resume, or reuse) the protocol's run — or one shard of it.

    The run is reused or resumed only when its identity (protocol, code, weights, data,
    libraries, device) is unchanged and its artefacts verify; otherwise it goes to a new
    folder. ``limit_pairs`` runs only the first pairs into ``<run>-first<n>/``, without the
    gate, the stages or a summary: records only (the determinism stage's re-runs).
    ``force_rerun`` discards the folder's contents first. ``executor`` computes the records
    (:mod:`faceattr.experiments.executor`; default the in-process loop), on the protocol's
    ``[execution] device`` under :func:`faceattr.devices.device_session`.

    Returns
    -------
    RunFolder
        The complete run's folder, or the shard's folder.

    Raises
    ------
    GateFailedError
        The model failed the gate on the run's pairs (``gate.json`` is written; exit 1).
    RunLockedError, IntegrityError
        Another process writes the folder; an artefact was edited after the run.
    """
    prepared = prepare_run(protocol, reports_dir, shard=shard, limit_pairs=limit_pairs)
    folder = shard.folder(prepared.root) if shard else RunFolder(prepared.root)
    with run_lock(folder.root):
        if force_rerun:
            clear_folder(folder.root)
        if (folder.root / PROVENANCE_FILE).exists():
            failed = gate_failure(folder.root)
            if folder.summary.exists() or folder.shard_done.exists() or failed is not None:
                verify_run(folder)
                if failed is not None:
                    raise GateFailedError(gate_message(failed), folder.root)
                return folder
            _check_resumable(folder, prepared)
        else:
            lineage = None if shard or limit_pairs else _lineage(prepared, reports_dir)
            start_folder(folder, prepared, threads=threads, lineage=lineage)
        with device_session(prepared.model, protocol.execution.device,
                            protocol.execution.forward_chunk):
            return _run_records(folder, prepared, threads=threads, progress=progress,
                                shard=shard, limit_pairs=limit_pairs, executor=executor)


def _run_records(folder: RunFolder, prepared: PreparedRun, *, threads: int, progress: bool,
                 shard: Shard | None, limit_pairs: int | None,
                 executor: Executor | None = None) -> RunFolder:
    protocol = prepared.protocol
    started = time.time()
    embeddings = RunContext(prepared, folder, threads).embeddings
    if limit_pairs is None:  # a partial re-run (determinism stage) reuses the full run's gate
        gate = _gate(prepared.model, prepared.mine, embeddings, protocol.model.min_auc)
        if not gate.passed:
            write_json(folder.root / GATE_FILE, asdict(gate))
            record_new_files(folder.root)
            raise GateFailedError(gate_message(gate), folder.root)
    executor = executor or SerialExecutor()
    n_resumed = _process(folder, prepared, embeddings, progress, executor)
    write_json(folder.timing, {"wall_s": time.time() - started, "finished_unix_s": time.time(),
                               "resumed_pairs": n_resumed, **executor.describe()})
    if shard is not None:
        write_json(folder.shard_done, {"index": shard.index, "count": shard.count,
                                       "n_pairs": len(prepared.mine),
                                       "weights_sha256": prepared.model.weights_sha256})
    elif limit_pairs is None:
        record_artefacts(folder.root, "timing.json")
        run_pipeline(RunContext(prepared, folder, threads, embeddings))
    record_new_files(folder.root)
    return folder


def shard_info(folder: RunFolder) -> dict[str, object]:
    """The done-marker of a shard."""
    info: dict[str, object] = read_json(folder.shard_done)
    return info

