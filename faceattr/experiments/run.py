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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from faceattr.attribution import AttributionBatch, AttributionMethod
from faceattr.attribution.base import AttributionDetails
from faceattr.attribution.explained import observe_explained
from faceattr.attribution.target import TARGET_ERROR_STATUS, TargetSanity
from faceattr.calibration.calibrate import check_calibrated
from faceattr.data.pairs import LoadedImage, Pair, PairSource, build_manifest, image_hashes
from faceattr.data.pairs import manifest_sha256 as _manifest_sha256
from faceattr.devices import (
    device_session,
    device_settings,
    identity_device,
    resolve_device,
)
from faceattr.errors import GateFailedError, InputError, IntegrityError
from faceattr.experiments.context import (
    ATTRIBUTION_CHUNK,
    attribute_in_fixed_chunks,
    attribution_batch,
    build_methods,
    build_model,
    build_source,
    embed_images,
    falsification_settings,
    fixed_chunks,
    load_images,
    ranked_maps,
    real_rows,
    take_rows,
)
from faceattr.experiments.executor import Executor, SerialExecutor
from faceattr.experiments.folder import (
    RunFolder,
    load_records,
    load_summary,
    prepare_folder,
    record_line,
    verify_run,
    write_summary,
)
from faceattr.experiments.gate import model_gate
from faceattr.experiments.identity import (
    IDENTITY_FILE,
    RunIdentity,
    git_state,
    identity_diff,
    previous_runs,
    read_identity,
)
from faceattr.experiments.provenance import provenance
from faceattr.experiments.summary import GateResult, RunSummary, summarise_method
from faceattr.experiments.target_identity import apply_target_identity, identity_checks
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.engine import clean_scores, failed_record
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

__all__ = [
    "ATTRIBUTION_CHUNK",
    "GATE_FILE",
    "GateFailedError",
    "PreparedRun",
    "RunFolder",
    "Shard",
    "attribute_in_fixed_chunks",
    "build_source",
    "clear_folder",
    "falsification_settings",
    "finalize_run",
    "gate_failure",
    "load_records",
    "load_summary",
    "prepare_run",
    "resolve_run_folder",
    "run_protocol",
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


@dataclass(frozen=True)
class PreparedRun:
    """A protocol resolved against the data, weights and code at hand: its identity and
    folder, and what was loaded to compute them (reused by the run)."""

    protocol: Protocol
    source: PairSource
    pairs: Sequence[Pair]
    mine: Sequence[Pair]
    images: dict[str, LoadedImage]
    manifest: dict[str, object]
    model: VerificationModel
    identity: RunIdentity
    root: Path


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
                                   device=identity_device(resolve_device(
                                       protocol.execution.device)))
    name = identity.folder_name(protocol.name)
    if limit_pairs is not None:
        name += f"-first{limit_pairs}"
    return PreparedRun(protocol=protocol, source=source, pairs=pairs, mine=mine, images=images,
                       manifest=manifest, model=model, identity=identity,
                       root=confined_path(reports_dir, name))


def resolve_run_folder(protocol: Protocol, reports_dir: Path) -> RunFolder:
    """The folder a run of ``protocol`` has with the code, weights and data at hand."""
    return RunFolder(prepare_run(protocol, reports_dir).root)


# --- attribution and records ------------------------------------------------------------------


@dataclass(frozen=True)
class _Attributed:
    details: AttributionDetails
    failures: dict[int, tuple[str, str]]  # row -> (status, reason)


def _attribute_rows(method: AttributionMethod, batch: AttributionBatch, rows: list[int],
                    n_real: int) -> AttributionDetails:
    return real_rows(method.attribute_with_details(take_rows(batch, rows)), n_real)


def _error(exc: BaseException) -> tuple[str, str]:
    status = f"error:{type(exc).__name__}"
    return status, (str(exc).splitlines() or [status])[0] or status


def attribute_pairs(method: AttributionMethod, batch: AttributionBatch) -> _Attributed:
    """Attribute in fixed chunks; a failing chunk is retried pair by pair, so an exception or a
    non-finite map marks only the pairs it affects (``error:<type>``, ``error:NonFiniteMap``)
    and never depends on how the run grouped its pairs."""
    n, shape = batch.probes.shape[0], tuple(batch.probes.shape[-2:])
    maps = np.zeros((n, *shape), dtype=np.float64)
    deltas: NDArray[np.float64] | None = None
    failures: dict[int, tuple[str, str]] = {}
    facts: AttributionDetails | None = None
    for rows, n_real in fixed_chunks(n):
        parts: list[tuple[int, AttributionDetails]] = []
        try:
            parts.append((rows[0], _attribute_rows(method, batch, rows, n_real)))
        except Exception:  # noqa: BLE001 — retried per pair below; failures become records
            for row in rows[:n_real]:
                try:
                    parts.append((row, _attribute_rows(method, batch,
                                                       [row] * ATTRIBUTION_CHUNK, 1)))
                except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>
                    failures[row] = _error(exc)
        for start, part in parts:
            maps[start:start + part.maps.shape[0]] = part.maps
            if part.convergence_delta is not None:
                if deltas is None:
                    deltas = np.zeros(n, dtype=np.float64)
                deltas[start:start + part.maps.shape[0]] = part.convergence_delta
            facts = part
    for row in range(n):
        if row not in failures and not np.isfinite(maps[row]).all():
            bad = int((~np.isfinite(maps[row])).sum())
            failures[row] = ("error:NonFiniteMap",
                             f"{method.method_id} returned a map with {bad} non-finite values")
        elif row not in failures and deltas is not None and not np.isfinite(deltas[row]):
            failures[row] = ("error:NonFiniteMap",
                             f"{method.method_id} returned a non-finite completeness residual")
    for row in failures:
        maps[row] = 0.0  # a constant map: the engine spends no forwards on it
        if deltas is not None:
            deltas[row] = 0.0
    return _Attributed(
        details=AttributionDetails(
            maps=maps, convergence_delta=deltas,
            layer=None if facts is None else facts.layer,
            native_resolution=None if facts is None else facts.native_resolution,
            upsampling=None if facts is None else facts.upsampling),
        failures=failures)


def _with_details(pairs: Sequence[Pair], records: list[PairRecord], details: AttributionDetails,
                  sanity: Sequence[TargetSanity] | None, verdict_rule: str) -> list[PairRecord]:
    """Add completeness and target-sanity facts; a pair whose target fails its sanity check
    becomes ``error:target`` (its map explains nothing)."""
    out: list[PairRecord] = []
    for i, record in enumerate(records):
        if record.status.startswith("error:"):
            out.append(record)
            continue
        delta = None if details.convergence_delta is None else float(details.convergence_delta[i])
        grad_norm = None if sanity is None else sanity[i].grad_norm
        record = replace(record, attribution_sum=float(details.maps[i].sum()),
                         convergence_delta=delta, target_grad_norm=grad_norm)
        if sanity is not None and not sanity[i].passed:
            failed = failed_record(
                pairs[i], record.model, record.method,
                TARGET_ERROR_STATUS, sanity[i].reason or "target sanity failed",
                record.score_clean, verdict_rule)
            record = replace(failed, target_grad_norm=grad_norm)
        out.append(record)
    return out


def _falsify(model: VerificationModel, inputs: PairInputs, maps: NDArray[np.float64], *,
             method_id: str, seed: int, settings: FalsificationSettings) -> list[PairRecord]:
    """The engine on the batch; if it raises, pair by pair (a failing pair is an error)."""
    try:
        return falsify_maps(model, inputs, maps, method_id=method_id, seed=seed,
                            settings=settings)
    except Exception:  # noqa: BLE001 — retried per pair; failures become records
        scores = clean_scores(inputs)
        out = []
        for i, pair in enumerate(inputs.pairs):
            one = inputs.subset([i])
            try:
                out += falsify_maps(model, one, maps[i:i + 1], method_id=method_id, seed=seed,
                                    settings=settings)
            except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>
                status, reason = _error(exc)
                out.append(failed_record(pair, model.name, method_id, status, reason,
                                         float(scores[i]), settings.verdict))
        return out


def _method_records(method: AttributionMethod, model: VerificationModel, inputs: PairInputs,
                    protocol: Protocol, settings: FalsificationSettings,
                    sanity: Sequence[TargetSanity]) -> list[PairRecord]:
    batch = attribution_batch(model, inputs, protocol.seed)
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        attributed = attribute_pairs(method, batch)
    if len(attributed.failures) == len(inputs.pairs):  # nothing to test
        scores = clean_scores(inputs)
        return [failed_record(p, model.name, method.method_id, *attributed.failures[i],
                              float(scores[i]), settings.verdict)
                for i, p in enumerate(inputs.pairs)]
    ranked = ranked_maps(protocol, method.method_id, attributed.details.maps)
    records = _falsify(model, inputs, ranked, method_id=method.method_id, seed=protocol.seed,
                       settings=settings)
    checked = None if method.info.is_control else sanity
    records = _with_details(inputs.pairs, records, attributed.details, checked,
                            settings.verdict)
    if method.info.explains_score and not method.info.is_control:  # else no scalar explained
        records = apply_target_identity(inputs.pairs, records, identity_checks(
            method.method_id, observed, inputs), settings.verdict)
    for row, (status, reason) in sorted(attributed.failures.items()):
        records[row] = failed_record(inputs.pairs[row], model.name, method.method_id, status,
                                     reason, records[row].score_clean, settings.verdict)
    return records


def method_records(method: AttributionMethod, model: VerificationModel, inputs: PairInputs,
                   protocol: Protocol, settings: FalsificationSettings,
                   sanity: Sequence[TargetSanity]) -> list[PairRecord]:
    """One method's records on a batch of pairs, exactly as the records stage makes them
    (reused by ``faceattr calibrate`` on the calibration split)."""
    return _method_records(method, model, inputs, protocol, settings, sanity)


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
    methods = build_methods(prepared.protocol)
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


def run_stages(folder: RunFolder, protocol: Protocol, threads: int) -> None:
    """The optional stages after the records, each recorded in the ledger as it finishes."""
    from faceattr.experiments.stages import (
        artefact_stage,
        comparison_stage,
        determinism_stage,
        metric_validity_stage,
        partner_sensitivity_stage,
        randomisation_stage,
        strata_stage,
    )

    for stage in (randomisation_stage, artefact_stage, metric_validity_stage,
                  partner_sensitivity_stage, strata_stage):
        stage(folder, protocol)
        record_new_files(folder.root)
    determinism_stage(folder, protocol, threads)
    record_new_files(folder.root)
    finalize_run(folder, protocol, load_records(folder))
    comparison_stage(folder, protocol)
    record_new_files(folder.root)


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
    embeddings = embed_images(prepared.model, prepared.images, protocol.execution.forward_chunk)
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
        run_stages(folder, protocol, threads)
    record_new_files(folder.root)
    return folder


def shard_info(folder: RunFolder) -> dict[str, object]:
    """The done-marker of a shard."""
    info: dict[str, object] = read_json(folder.shard_done)
    return info

