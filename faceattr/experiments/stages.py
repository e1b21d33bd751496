"""The optional stages of a run after its records, each writing its own artefact once.

randomisation (``[randomisation]``: ``randomisation.json``, the gallery, the completeness
trend), artefacts (``[artefacts]``: ``artefacts.json``), metric validity
(``[metric_validity]``: ``metric_values.json``), partner sensitivity
(``[partner_sensitivity]``: ``partner_sensitivity.json``), determinism (``[determinism]``:
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

__all__ = ["artefact_stage", "comparison_stage", "determinism_stage", "metric_validity_stage",
           "partner_sensitivity_stage", "randomisation_stage", "strata_stage"]


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
                               topk_frac=spec.topk_frac, repaired=spec.repaired)
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


def metric_validity_stage(folder: RunFolder, protocol: Protocol) -> None:
    """The evaluation metrics of the truth_tracking families' maps (``[metric_validity]``)."""
    from faceattr.experiments.metric_stage import run_metric_stage

    run_metric_stage(folder.root, protocol)


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


def strata_stage(folder: RunFolder, protocol: Protocol) -> None:
    """The stratified analysis of the records over the declared covariates (``[strata]``:
    ``strata.json``)."""
    from faceattr.experiments.folder import load_records
    from faceattr.experiments.strata_stage import run_strata_stage

    if protocol.strata is not None:
        run_strata_stage(folder.root, protocol, load_records(folder))


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


def partner_sensitivity_stage(folder: RunFolder, protocol: Protocol) -> None:
    """Re-explain genuine pairs against a random impostor partner (``[partner_sensitivity]``):
    ``partner_sensitivity.json`` (skipped when not declared or the file exists)."""
    from faceattr.randomisation.partner import (
        PARTNER_FILE,
        PartnerSwap,
        choose_swaps,
        run_partner_sensitivity,
        write_partner_sensitivity,
    )

    spec = protocol.partner_sensitivity
    if spec is None or (folder.root / PARTNER_FILE).exists():
        return
    source = build_source(protocol)
    pairs = source.pairs()
    model = build_model(protocol)
    chosen = choose_swaps(pairs, spec.n_pairs, protocol.seed)
    rows = [row for row, _, _ in chosen]

    def stacked(image_ids: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([source.load_image(i).image for i in image_ids]))

    probes = stacked([pairs[r].image_a for r in rows])
    chunk = protocol.execution.forward_chunk
    probe_emb = embed_batched(model, probes, chunk_size=chunk)
    partner_emb = embed_batched(model, stacked([pairs[r].image_b for r in rows]),
                                chunk_size=chunk)
    impostor_emb = embed_batched(model, stacked([image for _, image, _ in chosen]),
                                 chunk_size=chunk)
    masks = [source.load_image(pairs[r].image_a).identity_mask for r in rows]
    batch = AttributionBatch(
        model=model, probes=probes, partner_embeddings=partner_emb,
        pair_ids=tuple(pairs[r].pair_id for r in rows),
        identity_masks=None if any(m is None for m in masks) else np.stack(masks),  # type: ignore[arg-type]
        seed=protocol.seed)
    genuine_scores = (probe_emb.double() * partner_emb.double()).sum(dim=1).tolist()
    impostor_scores = (probe_emb.double() * impostor_emb.double()).sum(dim=1).tolist()
    swaps = [PartnerSwap(pair_id=pairs[r].pair_id, probe_image=pairs[r].image_a,
                         probe_identity=pairs[r].identity_a, partner_image=pairs[r].image_b,
                         impostor_image=image, impostor_identity=identity,
                         score_genuine=genuine_scores[j], score_impostor=impostor_scores[j])
             for j, (r, image, identity) in enumerate(chosen)]
    result = run_partner_sensitivity(build_methods(protocol), batch, swaps=swaps,
                                     impostor_embeddings=impostor_emb, seed=protocol.seed,
                                     metric=spec.metric, topk_frac=spec.topk_frac)
    write_partner_sensitivity(folder.root, result)
