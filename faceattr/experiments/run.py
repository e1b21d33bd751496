"""Run a protocol end to end into a run folder: resumable and shardable.

protocol -> pairs (manifest) -> model (gate) -> attribution -> falsification -> records
-> summary. ``reports/<name>-<hash>/`` holds ``protocol.json``, ``manifest.json``,
``records.jsonl`` (flushed per line), ``summary.json``, ``provenance.json`` and
``timing.json`` (wall-clock times, kept apart from the deterministic artefacts). A shard
``i/n`` runs pairs ``i, i + n, i + 2n, ...`` into ``<run>/shards/<i>-of-<n>/``;
:func:`faceattr.experiments.shards.merge_shards` combines them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.attribution import AttributionBatch, AttributionMethod, build_method
from faceattr.attribution.base import AttributionDetails
from faceattr.attribution.target import TARGET_ERROR_STATUS, TargetSanity, target_sanity
from faceattr.data.pairs import (
    LoadedImage,
    Pair,
    PairSource,
    build_manifest,
    image_hashes,
    manifest_sha256,
)
from faceattr.data.sources import build_source as build_pair_source
from faceattr.experiments.folder import (
    RunFolder,
    append_record,
    load_records,
    load_summary,
    prepare_folder,
    write_records,
    write_summary,
)
from faceattr.experiments.gate import model_gate
from faceattr.experiments.provenance import provenance
from faceattr.experiments.summary import RunSummary, summarise_method
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.engine import clean_scores, failed_record
from faceattr.io import atomic_write_text, read_json, write_json
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.models.loading import load_model
from faceattr.protocol import Protocol
from faceattr.records import PairRecord

__all__ = ["ATTRIBUTION_CHUNK", "GateFailedError", "RunFolder", "Shard", "build_source",
           "falsification_settings", "finalize_run", "load_records", "load_summary",
           "run_protocol"]


class GateFailedError(RuntimeError):
    """The model failed the verification gate; no attribution is trusted."""


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
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/3") from None
        return cls(index, count)

    def folder(self, run_root: Path) -> RunFolder:
        """The shard's folder inside the run folder."""
        return RunFolder(run_root / "shards" / f"{self.index}-of-{self.count}")


def build_source(protocol: Protocol) -> PairSource:
    """The protocol's pair source."""
    return build_pair_source(protocol.data, seed=protocol.seed)


def build_model(protocol: Protocol) -> VerificationModel:
    """The protocol's verification model."""
    weights = Path(protocol.model.weights) if protocol.model.weights else None
    return load_model(protocol.model.name, weights_path=weights)


def falsification_settings(protocol: Protocol) -> FalsificationSettings:
    """The engine settings a protocol declares (parsed once, with the protocol)."""
    return protocol.falsification.settings


def build_methods(protocol: Protocol) -> list[AttributionMethod]:
    """The protocol's methods, in canonical (id) order."""
    return sorted((build_method(m.id, m.method, m.params_dict(), protocol.source_path)
                   for m in protocol.methods), key=lambda m: m.method_id)


def ranked_maps(protocol: Protocol, method_id: str,
                maps: NDArray[np.float64]) -> NDArray[np.float64]:
    """The maps the falsification test ranks: as they are, or by magnitude (declared)."""
    (spec,) = [m for m in protocol.methods if m.id == method_id]
    return np.abs(maps) if spec.relevance == "abs" else maps


def _load_images(source: PairSource, pairs: Sequence[Pair]) -> dict[str, LoadedImage]:
    images: dict[str, LoadedImage] = {}
    for pair in pairs:
        for image_id in (pair.image_a, pair.image_b):
            if image_id not in images:
                images[image_id] = source.load_image(image_id)
    return images


def _embed_all(model: VerificationModel, images: dict[str, LoadedImage],
               chunk: int) -> dict[str, NDArray[np.float32]]:
    ids = sorted(images)
    stacked = torch.from_numpy(np.stack([images[i].image for i in ids]))
    embeddings = embed_batched(model, stacked, chunk_size=chunk).numpy()
    return {image_id: embeddings[row] for row, image_id in enumerate(ids)}


def load_pair_inputs(source: PairSource, pairs: Sequence[Pair], model: VerificationModel,
                     forward_chunk: int) -> PairInputs:
    """Load ``pairs`` (each image once) and embed their probes and partners."""
    images = _load_images(source, pairs)
    masks = [images[p.image_a].identity_mask for p in pairs]
    probes = np.stack([images[p.image_a].image for p in pairs])
    partners = np.stack([images[p.image_b].image for p in pairs])
    return PairInputs(
        pairs=pairs, probes=probes,
        probe_embeddings=embed_batched(model, torch.from_numpy(probes),
                                       chunk_size=forward_chunk).numpy(),
        partner_embeddings=embed_batched(model, torch.from_numpy(partners),
                                         chunk_size=forward_chunk).numpy(),
        identity_masks=None if any(m is None for m in masks) else np.stack(masks))  # type: ignore[arg-type]


def attribution_batch(model: VerificationModel, inputs: PairInputs,
                      seed: int) -> AttributionBatch:
    """The attribution methods' view of a batch of pairs."""
    return AttributionBatch(model=model, probes=torch.from_numpy(inputs.probes),
                            partner_embeddings=torch.from_numpy(inputs.partner_embeddings),
                            pair_ids=tuple(p.pair_id for p in inputs.pairs),
                            identity_masks=inputs.identity_masks, seed=seed)


#: Pairs per attribution call. Fixed (the last chunk is padded by repeating its last pair) so
#: that a map's last bits never depend on how the run grouped its pairs: on CPU, kernels can
#: pick a different blocking for a different batch size.
ATTRIBUTION_CHUNK = 4


def _take(batch: AttributionBatch, rows: list[int]) -> AttributionBatch:
    return AttributionBatch(
        model=batch.model, probes=batch.probes[rows],
        partner_embeddings=batch.partner_embeddings[rows],
        pair_ids=tuple(batch.pair_ids[r] for r in rows),
        identity_masks=None if batch.identity_masks is None else batch.identity_masks[rows],
        seed=batch.seed)


def attribute_in_fixed_chunks(method: AttributionMethod,
                              batch: AttributionBatch) -> AttributionDetails:
    """Attribute a batch in chunks of exactly ``ATTRIBUTION_CHUNK`` pairs."""
    maps: list[NDArray[np.float64]] = []
    deltas: list[NDArray[np.float64]] = []
    details = None
    for rows, n_real in _fixed_chunks(batch.probes.shape[0]):
        details = method.attribute_with_details(_take(batch, rows))
        maps.append(details.maps[:n_real])
        if details.convergence_delta is not None:
            deltas.append(details.convergence_delta[:n_real])
    if details is None:
        raise ValueError("no pairs to attribute")
    return AttributionDetails(maps=np.concatenate(maps),
                              convergence_delta=np.concatenate(deltas) if deltas else None,
                              layer=details.layer, native_resolution=details.native_resolution,
                              upsampling=details.upsampling)


def _with_details(pairs: Sequence[Pair], records: list[PairRecord], details: AttributionDetails,
                  sanity: Sequence[TargetSanity] | None, verdict_rule: str) -> list[PairRecord]:
    """Add completeness and target-sanity facts; a pair whose target fails its sanity check
    becomes ``error:target`` (its map explains nothing)."""
    out: list[PairRecord] = []
    for i, record in enumerate(records):
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


def _fixed_chunks(n_rows: int) -> list[tuple[list[int], int]]:
    """Row lists of exactly ``ATTRIBUTION_CHUNK`` (the last padded by repeating its last row)
    and how many rows of each are real."""
    chunks = []
    for start in range(0, n_rows, ATTRIBUTION_CHUNK):
        rows = list(range(start, min(start + ATTRIBUTION_CHUNK, n_rows)))
        n_real = len(rows)
        chunks.append((rows + [rows[-1]] * (ATTRIBUTION_CHUNK - n_real), n_real))
    return chunks


def _target_sanity_fixed_chunks(model: VerificationModel, inputs: PairInputs,
                                grad_norm_min: float) -> list[TargetSanity]:
    probes = torch.from_numpy(inputs.probes)
    partners = torch.from_numpy(inputs.partner_embeddings)
    out: list[TargetSanity] = []
    for rows, n_real in _fixed_chunks(probes.shape[0]):
        out += target_sanity(model, probes[rows], partners[rows],
                             grad_norm_min=grad_norm_min)[:n_real]
    return out


def _method_records(method: AttributionMethod, model: VerificationModel, inputs: PairInputs,
                    protocol: Protocol,
                    settings: FalsificationSettings,
                    sanity: Sequence[TargetSanity]) -> list[PairRecord]:
    batch = attribution_batch(model, inputs, protocol.seed)
    try:
        details = attribute_in_fixed_chunks(method, batch)
    except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>, never dropped
        status = f"error:{type(exc).__name__}"
        scores = clean_scores(inputs)
        return [failed_record(p, model.name, method.method_id, status, str(exc) or status,
                              float(scores[i]), settings.verdict)
                for i, p in enumerate(inputs.pairs)]
    ranked = ranked_maps(protocol, method.method_id, details.maps)
    records = falsify_maps(model, inputs, ranked, method_id=method.method_id,
                           seed=protocol.seed, settings=settings)
    checked = None if method.info.is_control else sanity
    return _with_details(inputs.pairs, records, details, checked,
                         settings.verdict)


def _resume(folder: RunFolder, n_methods: int) -> int:
    """Keep the records of fully processed pairs (cut a torn tail); return their count."""
    records = load_records(folder)
    n_pairs_done = len(records) // n_methods
    if len(records) != n_pairs_done * n_methods or not folder.records.exists():
        write_records(folder, records[:n_pairs_done * n_methods])
    return n_pairs_done


def _check_gate(model: VerificationModel, pairs: Sequence[Pair],
                embeddings: dict[str, NDArray[np.float32]], min_auc: float) -> None:
    inputs = PairInputs(pairs=pairs, probes=np.zeros((0, 3, 1, 1), dtype=np.float32),
                        probe_embeddings=np.stack([embeddings[p.image_a] for p in pairs]),
                        partner_embeddings=np.stack([embeddings[p.image_b] for p in pairs]))
    gate = model_gate(model.name, clean_scores(inputs),
                      np.array([p.is_genuine for p in pairs]), min_auc=min_auc)
    if not gate.passed:
        raise GateFailedError(f"model {model.name} failed the gate: AUC {gate.auc:.4f} < "
                              f"{gate.min_auc:g} on {len(pairs)} pairs; attributions of a model "
                              "that does not verify faces are not trusted")


def _process(folder: RunFolder, protocol: Protocol, model: VerificationModel,
             pairs: Sequence[Pair], images: dict[str, LoadedImage],
             embeddings: dict[str, NDArray[np.float32]], progress: bool) -> int:
    methods = build_methods(protocol)
    settings = falsification_settings(protocol)
    n_done = _resume(folder, len(methods))
    todo = pairs[n_done:]
    step = protocol.execution.pairs_per_batch
    for start in tqdm(range(0, len(todo), step), desc=protocol.name, unit="batch",
                      disable=not progress):
        chunk = todo[start:start + step]
        masks = [images[p.image_a].identity_mask for p in chunk]
        stacked = None if any(m is None for m in masks) else np.stack(masks)  # type: ignore[arg-type]
        inputs = PairInputs(
            pairs=chunk, probes=np.stack([images[p.image_a].image for p in chunk]),
            probe_embeddings=np.stack([embeddings[p.image_a] for p in chunk]),
            partner_embeddings=np.stack([embeddings[p.image_b] for p in chunk]),
            identity_masks=stacked)
        sanity = _target_sanity_fixed_chunks(model, inputs,
                                             protocol.model.target_grad_norm_min)
        by_method = [_method_records(m, model, inputs, protocol, settings, sanity)
                     for m in methods]
        for i in range(len(chunk)):
            for records in by_method:
                append_record(folder, records[i])
    return n_done


def finalize_run(folder: RunFolder, protocol: Protocol, manifest: dict[str, object],
                 records: Sequence[PairRecord], *, weights_sha256: str, threads: int) -> None:
    """Write provenance and the summary of a complete run, from its records only."""
    by_pair: dict[str, PairRecord] = {}
    for record in records:
        by_pair.setdefault(record.pair_id, record)
    scores = np.array([by_pair[p].score_clean for p in sorted(by_pair)], dtype=np.float64)
    labels = np.array([by_pair[p].is_genuine for p in sorted(by_pair)])
    gate = model_gate(protocol.model.name, scores, labels, min_auc=protocol.model.min_auc)
    method_ids = sorted({r.method for r in records})
    summary = RunSummary(
        run_name=protocol.run_name, protocol_sha256=protocol.content_sha256,
        manifest_sha256=manifest_sha256(manifest), seed=protocol.seed, n_pairs=len(by_pair),
        gate=gate,
        methods={m: summarise_method([r for r in records if r.method == m],
                                     alpha=protocol.alpha,
                                     interval_method=protocol.interval_method)
                 for m in method_ids})
    write_json(folder.provenance, provenance(
        protocol_sha256=protocol.content_sha256, manifest_sha256=summary.manifest_sha256,
        seed=protocol.seed, model=protocol.model.name, weights_sha256=weights_sha256,
        threads=threads))
    write_summary(folder, summary)


def randomisation_stage(folder: RunFolder, protocol: Protocol) -> None:
    """Adebayo et al.'s randomisation test of every method, written to ``randomisation.json``,
    the completeness trend and the attribution gallery of the first two pairs (skipped when
    the protocol declares no ``[randomisation]`` or the file exists)."""
    from faceattr.experiments.gallery import write_gallery
    from faceattr.randomisation.stage import run_randomisation, write_randomisation

    spec = protocol.randomisation
    if spec is None or (folder.root / "randomisation.json").exists():
        return
    source = build_source(protocol)
    pairs = source.pairs()
    model = build_model(protocol)
    probes = np.stack([source.load_image(p.image_a).image for p in pairs])
    partners = torch.from_numpy(np.stack([source.load_image(p.image_b).image for p in pairs]))
    masks = [source.load_image(p.image_a).identity_mask for p in pairs]
    batch = AttributionBatch(
        model=model, probes=torch.from_numpy(probes),
        partner_embeddings=embed_batched(model, partners,
                                         chunk_size=protocol.execution.forward_chunk),
        pair_ids=tuple(p.pair_id for p in pairs),
        identity_masks=None if any(m is None for m in masks) else np.stack(masks),  # type: ignore[arg-type]
        seed=protocol.seed)
    result = run_randomisation(model, build_methods(protocol), batch, partner_images=partners,
                               seed=protocol.seed, n_pairs=min(spec.n_pairs, len(pairs)),
                               topk_frac=spec.topk_frac)
    write_randomisation(folder.root, result)
    gallery_rows = list(range(min(2, len(pairs))))
    ranked = {m.id: m.relevance == "abs" for m in protocol.methods}
    methods = build_methods(protocol)
    write_gallery(folder.root, [(m, ranked[m.method_id]) for m in methods],
                  _take(batch, gallery_rows), falsification_settings(protocol))
    if spec.completeness_n_steps:
        from faceattr.experiments.completeness_trend import completeness_trend

        rows = list(range(min(spec.n_pairs, len(pairs))))
        completeness_trend(folder.root, protocol.methods, _take(batch, rows),
                           n_steps_grid=spec.completeness_n_steps, where=protocol.source_path)


def artefact_stage(folder: RunFolder, protocol: Protocol) -> None:
    """The shape and blur artefact controls under every declared fill (``[artefacts]``)."""
    from faceattr.experiments.artefact_stage import run_artefact_stage

    run_artefact_stage(folder.root, protocol)


def determinism_stage(folder: RunFolder, protocol: Protocol, threads: int) -> None:
    """Re-run the first pairs in fresh processes (``[determinism]``), once."""
    from faceattr.experiments.determinism import run_determinism_stage

    spec = protocol.determinism
    if spec is None or (folder.root / "determinism.json").exists():
        return
    stochastic = tuple(m.method_id for m in build_methods(protocol) if m.info.stochastic)
    run_determinism_stage(folder.root, json.loads(protocol.raw), n_pairs=spec.n_pairs,
                          stochastic_methods=stochastic, threads=threads)


def comparison_stage(folder: RunFolder, protocol: Protocol) -> None:
    """Compare the finished run with the declared baseline (``comparison.json``/``.txt``)."""
    from faceattr.compare import compare_paths
    from faceattr.compare.result import render_text

    spec = protocol.baseline
    if spec is None or (folder.root / "comparison.json").exists():
        return
    result = compare_paths(Path(spec.path), folder.root, margin=spec.margin, alpha=spec.alpha)
    write_json(folder.root / "comparison.json", result.to_json())
    atomic_write_text(folder.root / "comparison.txt", render_text(result))


def run_protocol(protocol: Protocol, reports_dir: Path, *, threads: int = 1,
                 progress: bool = True, shard: Shard | None = None,
                 limit_pairs: int | None = None) -> RunFolder:
    """Run (or resume, or reuse) the protocol's run — or one shard of it.

    ``limit_pairs`` runs only the first pairs into ``<run>-first<n>/``, without the gate, the
    stages or a summary: records only (the determinism stage's re-runs).

    Returns
    -------
    RunFolder
        The complete run's folder, or the shard's folder.
    """
    run_root = reports_dir / (protocol.run_name if limit_pairs is None
                              else f"{protocol.run_name}-first{limit_pairs}")
    folder = shard.folder(run_root) if shard else RunFolder(run_root)
    prepare_folder(folder, protocol)
    if folder.summary.exists() or folder.shard_done.exists():
        return folder
    started = time.time()
    source = build_source(protocol)
    pairs = source.pairs()[:limit_pairs]
    mine = pairs[shard.index::shard.count] if shard else pairs
    images = _load_images(source, mine)
    manifest = build_manifest(source, pairs, image_hashes(source, pairs, images))
    write_json(folder.manifest, manifest)
    model = build_model(protocol)
    embeddings = _embed_all(model, images, protocol.execution.forward_chunk)
    if limit_pairs is None:  # a partial re-run (determinism stage) reuses the full run's gate
        _check_gate(model, mine, embeddings, protocol.model.min_auc)
    n_resumed = _process(folder, protocol, model, mine, images, embeddings, progress)
    timing = {"wall_s": time.time() - started, "finished_unix_s": time.time(),
              "resumed_pairs": n_resumed}
    write_json(folder.timing, timing)
    if shard is not None:
        write_json(folder.shard_done, {"index": shard.index, "count": shard.count,
                                       "n_pairs": len(mine), "weights_sha256":
                                       model.weights_sha256})
    elif limit_pairs is None:
        randomisation_stage(folder, protocol)
        artefact_stage(folder, protocol)
        determinism_stage(folder, protocol, threads)
        finalize_run(folder, protocol, manifest, load_records(folder),
                     weights_sha256=model.weights_sha256, threads=threads)
        comparison_stage(folder, protocol)
    return folder


def shard_info(folder: RunFolder) -> dict[str, object]:
    """The done-marker of a shard."""
    info: dict[str, object] = read_json(folder.shard_done)
    return info
