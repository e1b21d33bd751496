"""The optional stages of a run after its records, each writing its own artefact once.

randomisation (``[randomisation]``: ``randomisation.json``, the gallery, the completeness
trend), artefacts (``[artefacts]``: ``artefacts.json``), determinism (``[determinism]``:
``determinism.json``) and the baseline comparison (``[baseline]``: ``comparison.json`` and
``.txt``). Each is skipped when the protocol does not declare it or its file exists; the run
records each new file's hash in the folder's ledger after the stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from faceattr.attribution import AttributionBatch
from faceattr.experiments.context import (
    build_methods,
    build_model,
    build_source,
    falsification_settings,
    take_rows,
)
from faceattr.experiments.folder import RunFolder
from faceattr.io import atomic_write_text, write_json
from faceattr.models.base import embed_batched
from faceattr.protocol import Protocol

__all__ = ["artefact_stage", "comparison_stage", "determinism_stage", "randomisation_stage"]


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
                  take_rows(batch, gallery_rows), falsification_settings(protocol))
    if spec.completeness_n_steps:
        from faceattr.experiments.completeness_trend import completeness_trend

        rows = list(range(min(spec.n_pairs, len(pairs))))
        completeness_trend(folder.root, protocol.methods, take_rows(batch, rows),
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
                          stochastic_methods=stochastic, threads=threads,
                          where=protocol.source_path)


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
