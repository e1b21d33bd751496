"""What every stage of a run builds from the protocol: pairs, model, methods, batches.

The one place pair inputs and attribution batches are built, shared by the records stage
(:mod:`faceattr.experiments.run`), the artefact stage and ``faceattr plan``; it imports no
stage, so the stages never import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.attribution import AttributionBatch, AttributionMethod, build_method
from faceattr.attribution.base import AttributionDetails
from faceattr.attribution.target import TargetSanity, target_sanity
from faceattr.data.pairs import LoadedImage, Pair, PairSource
from faceattr.data.sources import build_source as build_pair_source
from faceattr.experiments.identity import RunIdentity
from faceattr.falsification import FalsificationSettings, PairInputs
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.models.loading import load_model
from faceattr.protocol import Protocol
from faceattr.runfolder.folder import RunFolder

__all__ = [
    "ATTRIBUTION_CHUNK",
    "PreparedRun",
    "RunContext",
    "attribute_in_fixed_chunks",
    "attribution_batch",
    "build_methods",
    "build_model",
    "build_source",
    "falsification_settings",
    "fixed_chunks",
    "load_images",
    "load_pair_inputs",
    "pair_inputs",
    "ranked_maps",
    "real_rows",
    "take_rows",
    "target_sanity_fixed_chunks",
]

#: Pairs per attribution call. Fixed (the last chunk is padded by repeating its last pair) so
#: that a map's last bits never depend on how the run grouped its pairs: on CPU, kernels can
#: pick a different blocking for a different batch size.
ATTRIBUTION_CHUNK = 4


def build_source(protocol: Protocol) -> PairSource:
    """The protocol's pair source."""
    return build_pair_source(protocol.data, seed=protocol.seed)


def build_model(protocol: Protocol) -> VerificationModel:
    """The protocol's verification model (registered, imported, or from a model file), its
    network on the protocol's ``[execution] device`` (checked to exist: one-line error) and in
    its ``memory_format``."""
    from faceattr.devices import resolve_device

    device = resolve_device(protocol.execution.device)
    if protocol.model.file is not None:
        from faceattr.models.files import load_model_file

        model = load_model_file(protocol.model.file)
    else:
        weights = Path(protocol.model.weights) if protocol.model.weights else None
        model = load_model(protocol.model.name, weights_path=weights)
    if device.type != "cpu":
        model.network.to(device)
    if protocol.execution.memory_format == "channels_last":
        model.network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


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


def load_images(source: PairSource, pairs: Sequence[Pair]) -> dict[str, LoadedImage]:
    """Every image of ``pairs``, each loaded once."""
    images: dict[str, LoadedImage] = {}
    for pair in pairs:
        for image_id in (pair.image_a, pair.image_b):
            if image_id not in images:
                images[image_id] = source.load_image(image_id)
    return images


def pair_inputs(pairs: Sequence[Pair], images: dict[str, LoadedImage],
                embeddings: dict[str, NDArray[np.float32]]) -> PairInputs:
    """The engine's view of ``pairs`` from loaded images and their clean embeddings."""
    masks = [images[p.image_a].identity_mask for p in pairs]
    return PairInputs(
        pairs=pairs, probes=np.stack([images[p.image_a].image for p in pairs]),
        probe_embeddings=np.stack([embeddings[p.image_a] for p in pairs]),
        partner_embeddings=np.stack([embeddings[p.image_b] for p in pairs]),
        identity_masks=None if any(m is None for m in masks) else np.stack(masks))  # type: ignore[arg-type]


def embed_images(model: VerificationModel, images: dict[str, LoadedImage],
                 chunk: int) -> dict[str, NDArray[np.float32]]:
    """Clean embeddings of every image (sorted ids, fixed chunks)."""
    ids = sorted(images)
    stacked = torch.from_numpy(np.stack([images[i].image for i in ids]))
    embeddings = embed_batched(model, stacked, chunk_size=chunk).numpy()
    return {image_id: embeddings[row] for row, image_id in enumerate(ids)}


def load_pair_inputs(source: PairSource, pairs: Sequence[Pair], model: VerificationModel,
                     forward_chunk: int) -> PairInputs:
    """Load ``pairs`` (each image once) and embed their probes and partners."""
    images = load_images(source, pairs)
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


def take_rows(batch: AttributionBatch, rows: list[int]) -> AttributionBatch:
    """The sub-batch of ``rows`` (repeats allowed: the padding of a fixed chunk)."""
    return AttributionBatch(
        model=batch.model, probes=batch.probes[rows],
        partner_embeddings=batch.partner_embeddings[rows],
        pair_ids=tuple(batch.pair_ids[r] for r in rows),
        identity_masks=None if batch.identity_masks is None else batch.identity_masks[rows],
        seed=batch.seed)


def fixed_chunks(n_rows: int) -> list[tuple[list[int], int]]:
    """Row lists of exactly ``ATTRIBUTION_CHUNK`` (the last padded by repeating its last row)
    and how many rows of each are real."""
    chunks = []
    for start in range(0, n_rows, ATTRIBUTION_CHUNK):
        rows = list(range(start, min(start + ATTRIBUTION_CHUNK, n_rows)))
        n_real = len(rows)
        chunks.append((rows + [rows[-1]] * (ATTRIBUTION_CHUNK - n_real), n_real))
    return chunks


def _join(parts: Sequence[AttributionDetails]) -> AttributionDetails:
    deltas = [p.convergence_delta for p in parts]
    last = parts[-1]
    return AttributionDetails(
        maps=np.concatenate([p.maps for p in parts]),
        convergence_delta=None if any(d is None for d in deltas)
        else np.concatenate(deltas),  # type: ignore[arg-type]
        layer=last.layer, native_resolution=last.native_resolution,
        upsampling=last.upsampling)


def real_rows(details: AttributionDetails, n_real: int) -> AttributionDetails:
    """The first ``n_real`` rows of a fixed chunk's details (drop the padding)."""
    return AttributionDetails(
        maps=details.maps[:n_real],
        convergence_delta=None if details.convergence_delta is None
        else details.convergence_delta[:n_real],
        layer=details.layer, native_resolution=details.native_resolution,
        upsampling=details.upsampling)


def attribute_in_fixed_chunks(method: AttributionMethod,
                              batch: AttributionBatch) -> AttributionDetails:
    """Attribute a batch in chunks of exactly ``ATTRIBUTION_CHUNK`` pairs (errors raise)."""
    parts = [real_rows(method.attribute_with_details(take_rows(batch, rows)), n_real)
             for rows, n_real in fixed_chunks(batch.probes.shape[0])]
    if not parts:
        raise ValueError("no pairs to attribute")
    return _join(parts)


def target_sanity_fixed_chunks(model: VerificationModel, inputs: PairInputs,
                               grad_norm_min: float) -> list[TargetSanity]:
    """Target sanity of every pair, in the same fixed chunks as the attributions."""
    probes = torch.from_numpy(inputs.probes)
    partners = torch.from_numpy(inputs.partner_embeddings)
    out: list[TargetSanity] = []
    for rows, n_real in fixed_chunks(probes.shape[0]):
        out += target_sanity(model, probes[rows], partners[rows],
                             grad_norm_min=grad_norm_min)[:n_real]
    return out


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


@dataclass
class RunContext:
    """What every stage of a run shares, loaded once: the prepared run (protocol, pair source,
    pairs, images, model, identity), its folder, the thread count, and the clean embeddings of
    every image (computed on first use, in the fixed chunks of the records stage, so a stage
    sees exactly the clean scores its records were made from).

    Stages read from it and write only their own artefact (:mod:`faceattr.experiments.pipeline`).
    Methods are built afresh for each stage (:meth:`methods`): a method may keep per-run state
    such as hooks, and no stage may see another's.
    """

    prepared: PreparedRun
    folder: RunFolder
    threads: int = 1
    _embeddings: dict[str, NDArray[np.float32]] | None = field(default=None, repr=False)

    @property
    def protocol(self) -> Protocol:
        """The validated protocol."""
        return self.prepared.protocol

    @property
    def model(self) -> VerificationModel:
        """The verification model, on the protocol's device."""
        return self.prepared.model

    @property
    def source(self) -> PairSource:
        """The pair source."""
        return self.prepared.source

    @property
    def pairs(self) -> Sequence[Pair]:
        """The pairs this process runs (all of them, or one shard's)."""
        return self.prepared.mine

    @property
    def images(self) -> dict[str, LoadedImage]:
        """Every image of :attr:`pairs`, loaded once."""
        return self.prepared.images

    @property
    def embeddings(self) -> dict[str, NDArray[np.float32]]:
        """Clean embeddings of every image (sorted ids, ``forward_chunk`` rows per forward)."""
        if self._embeddings is None:
            self._embeddings = embed_images(self.model, self.images,
                                            self.protocol.execution.forward_chunk)
        return self._embeddings

    def methods(self) -> list[AttributionMethod]:
        """The protocol's methods, freshly built, in canonical (id) order."""
        return build_methods(self.protocol)

    def inputs(self, pairs: Sequence[Pair]) -> PairInputs:
        """The engine's view of ``pairs`` (which must be pairs of this run)."""
        return pair_inputs(pairs, self.images, self.embeddings)

    def batch(self, pairs: Sequence[Pair]) -> tuple[PairInputs, AttributionBatch]:
        """The engine's and the attribution methods' views of ``pairs``."""
        inputs = self.inputs(pairs)
        return inputs, attribution_batch(self.model, inputs, self.protocol.seed)
