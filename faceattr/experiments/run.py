"""Run a protocol end to end into a run folder; resumable.

protocol -> pairs (manifest) -> model (gate) -> attribution -> falsification -> records
-> summary. The folder ``reports/<name>-<hash>/`` holds ``protocol.json``, ``manifest.json``,
``records.jsonl`` (flushed per pair), ``summary.json``, ``provenance.json`` and
``timing.json`` (wall-clock times, kept apart from the deterministic artefacts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.attribution import AttributionBatch, AttributionMethod, build_method
from faceattr.data.pairs import LoadedImage, Pair, PairSource, build_manifest, manifest_sha256
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.experiments.gate import model_gate
from faceattr.experiments.provenance import provenance
from faceattr.experiments.summary import RunSummary, summarise_method
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.engine import failed_record
from faceattr.io import append_jsonl_line, atomic_write_text, read_json, read_jsonl, write_json
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.models.loading import load_model
from faceattr.protocol import Protocol
from faceattr.records import PairRecord

__all__ = ["GateFailedError", "RunFolder", "load_records", "load_summary", "run_protocol"]


class GateFailedError(RuntimeError):
    """The model failed the verification gate; no attribution is trusted."""


@dataclass(frozen=True, slots=True)
class RunFolder:
    """Paths of one run's artefacts."""

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
        """Per-pair records (JSONL)."""
        return self.root / "records.jsonl"

    @property
    def summary(self) -> Path:
        """The run summary (written last: its presence marks a complete run)."""
        return self.root / "summary.json"

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


def build_source(protocol: Protocol) -> PairSource:
    """The protocol's pair source."""
    data = protocol.data
    return SyntheticPairSource(world_seed=data.world_seed, n_pairs=data.n_pairs,
                               genuine_fraction=data.genuine_fraction,
                               first_identity=data.first_identity, sampling_seed=protocol.seed)


def _load_images(source: PairSource, pairs: Sequence[Pair]) -> dict[str, LoadedImage]:
    images: dict[str, LoadedImage] = {}
    for pair in pairs:
        for image_id in (pair.image_a, pair.image_b):
            if image_id not in images:
                images[image_id] = source.load_image(image_id)
    return images


def _prepare_folder(folder: RunFolder, protocol: Protocol) -> None:
    folder.root.mkdir(parents=True, exist_ok=True)
    if folder.protocol.exists():
        if folder.protocol.read_text(encoding="utf-8") != protocol.content:
            raise ValueError(f"{folder.root} holds a run of a different protocol; "
                             "refusing to overwrite it (move it away or use another reports dir)")
    else:
        atomic_write_text(folder.protocol, protocol.content)


def _completed_pairs(folder: RunFolder, n_methods: int) -> list[PairRecord]:
    """Records of fully processed pairs; a torn tail is cut off so the run can resume."""
    if not folder.records.exists():
        return []
    records = [PairRecord.from_json(row) for row in read_jsonl(folder.records)]
    n_complete = (len(records) // n_methods) * n_methods
    kept = records[:n_complete]
    from faceattr.io import dumps_strict

    atomic_write_text(folder.records, "".join(dumps_strict(r.to_json()) + "\n" for r in kept))
    return kept


def _embed_all(model: VerificationModel, images: dict[str, LoadedImage],
               chunk: int) -> dict[str, NDArray[np.float32]]:
    ids = sorted(images)
    stacked = torch.from_numpy(np.stack([images[i].image for i in ids]))
    embeddings = embed_batched(model, stacked, chunk_size=chunk).numpy()
    return {image_id: embeddings[row] for row, image_id in enumerate(ids)}


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
                              batch: AttributionBatch) -> NDArray[np.float64]:
    """Attribute a batch in chunks of exactly ``ATTRIBUTION_CHUNK`` pairs."""
    n_rows = batch.probes.shape[0]
    maps: list[NDArray[np.float64]] = []
    for start in range(0, n_rows, ATTRIBUTION_CHUNK):
        rows = list(range(start, min(start + ATTRIBUTION_CHUNK, n_rows)))
        n_real = len(rows)
        rows += [rows[-1]] * (ATTRIBUTION_CHUNK - n_real)
        maps.append(method.attribute(_take(batch, rows))[:n_real])
    return np.concatenate(maps)


def _method_records(method: AttributionMethod, model: VerificationModel, inputs: PairInputs,
                    masks: NDArray[np.bool_] | None, protocol: Protocol,
                    settings: FalsificationSettings) -> list[PairRecord]:
    batch = AttributionBatch(model=model, probes=torch.from_numpy(inputs.probes),
                             partner_embeddings=torch.from_numpy(inputs.partner_embeddings),
                             pair_ids=tuple(p.pair_id for p in inputs.pairs),
                             identity_masks=masks, seed=protocol.seed)
    try:
        maps = attribute_in_fixed_chunks(method, batch)
    except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>, never dropped
        status = f"error:{type(exc).__name__}"
        scores = (inputs.probe_embeddings.astype(np.float64)
                  * inputs.partner_embeddings.astype(np.float64)).sum(axis=1)
        return [failed_record(p, model.name, method.method_id, status, str(exc) or status,
                              float(scores[i]), settings.verdict)
                for i, p in enumerate(inputs.pairs)]
    return falsify_maps(model, inputs, maps, method_id=method.method_id, seed=protocol.seed,
                        settings=settings)


def falsification_settings(protocol: Protocol) -> FalsificationSettings:
    """The engine settings a protocol declares."""
    fs = protocol.falsification
    return FalsificationSettings(
        regions=fs.regions, q_frac=fs.q_frac, theta_high=fs.theta_high,
        theta_low=fs.theta_low, area_ratio_bounds=fs.area_ratio_bounds,
        k_per_region=fs.k_per_region, fill=fs.fill, blur_sigma_px=fs.blur_sigma_px,
        perturbation_sigma=fs.perturbation_sigma, verdict=fs.verdict, distance=fs.distance,
        tau_high=fs.tau_high, tau_low=fs.tau_low, epsilon=fs.epsilon, alpha=fs.test_alpha,
        forward_chunk=protocol.execution.forward_chunk)


def run_protocol(protocol: Protocol, reports_dir: Path, *, threads: int = 1,
                 progress: bool = True) -> RunFolder:
    """Run (or resume, or reuse) the protocol's run under ``reports_dir``.

    Returns
    -------
    RunFolder
        The folder holding the complete run's artefacts.
    """
    folder = RunFolder(reports_dir / protocol.run_name)
    _prepare_folder(folder, protocol)
    if folder.summary.exists():
        return folder
    started = time.time()
    source = build_source(protocol)
    pairs = source.pairs()
    images = _load_images(source, pairs)
    manifest = build_manifest(source, pairs, {k: v.sha256() for k, v in images.items()})
    write_json(folder.manifest, manifest)
    model = load_model(protocol.model.name)
    embeddings = _embed_all(model, images, protocol.execution.forward_chunk)
    scores = np.array([float(embeddings[p.image_a].astype(np.float64)
                             @ embeddings[p.image_b].astype(np.float64)) for p in pairs])
    gate = model_gate(model.name, scores, np.array([p.is_genuine for p in pairs]),
                      min_auc=protocol.model.min_auc)
    if not gate.passed:
        raise GateFailedError(f"model {model.name} failed the gate: AUC {gate.auc:.4f} < "
                              f"{gate.min_auc:g} on {len(pairs)} pairs; attributions of a model "
                              "that does not verify faces are not trusted")
    methods = sorted((build_method(m.id, m.method, m.params_dict(), protocol.source_path)
                      for m in protocol.methods), key=lambda m: m.method_id)
    settings = falsification_settings(protocol)
    done = _completed_pairs(folder, len(methods))
    step = protocol.execution.pairs_per_batch
    todo = pairs[len(done) // len(methods):]
    for start in tqdm(range(0, len(todo), step), desc=protocol.name, unit="batch",
                      disable=not progress):
        chunk = todo[start:start + step]
        inputs = PairInputs(
            pairs=chunk, probes=np.stack([images[p.image_a].image for p in chunk]),
            probe_embeddings=np.stack([embeddings[p.image_a] for p in chunk]),
            partner_embeddings=np.stack([embeddings[p.image_b] for p in chunk]))
        masks_list = [images[p.image_a].identity_mask for p in chunk]
        masks = None if any(m is None for m in masks_list) else np.stack(masks_list)  # type: ignore[arg-type]
        by_method = [_method_records(m, model, inputs, masks, protocol, settings)
                     for m in methods]
        for i in range(len(chunk)):
            for records in by_method:
                append_jsonl_line(folder.records, records[i].to_json())
    records = load_records(folder)
    summary = RunSummary(
        run_name=protocol.run_name, protocol_sha256=protocol.content_sha256,
        manifest_sha256=manifest_sha256(manifest), seed=protocol.seed, n_pairs=len(pairs),
        gate=gate,
        methods={m.method_id: summarise_method([r for r in records if r.method == m.method_id],
                                               alpha=protocol.alpha,
                                               interval_method=protocol.interval_method)
                 for m in methods})
    write_json(folder.provenance, provenance(
        protocol_sha256=protocol.content_sha256, manifest_sha256=summary.manifest_sha256,
        seed=protocol.seed, model=model.name, weights_sha256=model.weights_sha256,
        threads=threads))
    write_json(folder.timing, {"wall_s": time.time() - started, "finished_unix_s": time.time(),
                               "resumed_pairs": len(done) // len(methods)})
    write_json(folder.summary, summary.to_json())
    return folder


def load_records(folder: RunFolder) -> list[PairRecord]:
    """Read and validate every record of a run."""
    return [PairRecord.from_json(row) for row in read_jsonl(folder.records)]


def load_summary(folder: RunFolder) -> RunSummary:
    """Read a complete run's summary."""
    return RunSummary.from_json(read_json(folder.summary))
