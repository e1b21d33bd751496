"""The optional stages of a run after its records, each a function of the shared
:class:`~faceattr.experiments.context.RunContext` that writes its own artefact once.

randomisation (``[randomisation]``: ``randomisation.json``, the gallery, the completeness
trend), artefacts (``[artefacts]``: ``artefacts.json``), metric validity
(``[metric_validity]``: ``metric_values.json``), partner sensitivity
(``[partner_sensitivity]``: ``partner_sensitivity.json``), strata (``[strata]``:
``strata.json``), determinism (``[determinism]``: ``determinism.json``) and the baseline
comparison (``[baseline]``: ``comparison.json`` and ``.txt``). Which runs when, and the file,
the protocol table and the loader of each, are declared once in
:data:`faceattr.experiments.pipeline.STAGES`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from faceattr.experiments.context import (
    RunContext,
    embed_images,
    falsification_settings,
    take_rows,
)
from faceattr.io import atomic_write_text, write_json
from faceattr.runfolder.folder import load_records

__all__ = ["artefact_stage", "comparison_stage", "determinism_stage", "metric_validity_stage",
           "partner_sensitivity_stage", "randomisation_stage", "strata_stage"]


def randomisation_stage(ctx: RunContext) -> None:
    """Adebayo et al.'s randomisation test of every method, written to ``randomisation.json``,
    the completeness trend and the attribution gallery of the first two pairs."""
    from faceattr.experiments.gallery import write_gallery
    from faceattr.randomisation.stage import run_randomisation, write_randomisation

    protocol, root = ctx.protocol, ctx.folder.root
    spec = protocol.randomisation
    assert spec is not None  # the pipeline runs a stage only when it is declared
    pairs = ctx.pairs
    _, batch = ctx.batch(pairs)
    partners = torch.from_numpy(np.stack([ctx.images[p.image_b].image for p in pairs]))
    result = run_randomisation(ctx.model, ctx.methods(), batch, partner_images=partners,
                               seed=protocol.seed, n_pairs=min(spec.n_pairs, len(pairs)),
                               topk_frac=spec.topk_frac, repaired=spec.repaired)
    write_randomisation(root, result)
    gallery_rows = list(range(min(2, len(pairs))))
    ranked = {m.id: m.relevance == "abs" for m in protocol.methods}
    write_gallery(root, [(m, ranked[m.method_id]) for m in ctx.methods()],
                  take_rows(batch, gallery_rows), falsification_settings(protocol))
    if spec.completeness_n_steps:
        from faceattr.experiments.completeness_trend import completeness_trend

        rows = list(range(min(spec.n_pairs, len(pairs))))
        completeness_trend(root, protocol.methods, take_rows(batch, rows),
                           n_steps_grid=spec.completeness_n_steps, where=protocol.source_path)


def artefact_stage(ctx: RunContext) -> None:
    """The shape and blur artefact controls under every declared fill (``[artefacts]``)."""
    from faceattr.experiments.artefact_stage import run_artefact_stage

    run_artefact_stage(ctx)


def metric_validity_stage(ctx: RunContext) -> None:
    """The evaluation metrics of the truth_tracking families' maps (``[metric_validity]``)."""
    from faceattr.experiments.metric_stage import run_metric_stage

    run_metric_stage(ctx)


def determinism_stage(ctx: RunContext) -> None:
    """Re-run the first pairs in fresh processes (``[determinism]``)."""
    from faceattr.experiments.determinism import run_determinism_stage

    protocol = ctx.protocol
    spec = protocol.determinism
    assert spec is not None  # the pipeline runs a stage only when it is declared
    stochastic = tuple(m.method_id for m in ctx.methods() if m.info.stochastic)
    run_determinism_stage(ctx.folder.root, json.loads(protocol.raw), n_pairs=spec.n_pairs,
                          stochastic_methods=stochastic, threads=ctx.threads,
                          where=protocol.source_path)


def strata_stage(ctx: RunContext) -> None:
    """The stratified analysis of the records over the declared covariates (``[strata]``:
    ``strata.json``)."""
    from faceattr.experiments.strata_stage import run_strata_stage

    run_strata_stage(ctx, load_records(ctx.folder))


def comparison_stage(ctx: RunContext) -> None:
    """Compare the finished run with the declared baseline (``comparison.json``/``.txt``)."""
    from faceattr.compare import compare_paths
    from faceattr.compare.result import render_text

    spec, root = ctx.protocol.baseline, ctx.folder.root
    assert spec is not None  # the pipeline runs a stage only when it is declared
    result = compare_paths(Path(spec.path), root, margin=spec.margin, alpha=spec.alpha)
    write_json(root / "comparison.json", result.to_json())
    atomic_write_text(root / "comparison.txt", render_text(result))


def partner_sensitivity_stage(ctx: RunContext) -> None:
    """Re-explain genuine pairs against a random impostor partner (``[partner_sensitivity]``:
    ``partner_sensitivity.json``)."""
    from faceattr.randomisation.partner import (
        PartnerSwap,
        choose_swaps,
        run_partner_sensitivity,
        write_partner_sensitivity,
    )

    protocol, model = ctx.protocol, ctx.model
    spec = protocol.partner_sensitivity
    assert spec is not None  # the pipeline runs a stage only when it is declared
    pairs = ctx.pairs
    chosen = choose_swaps(pairs, spec.n_pairs, protocol.seed)
    # the impostor partners are images of the run's own pairs: embed them as the run did
    impostor_ids = [image for _, image, _ in chosen]
    missing = {i: ctx.source.load_image(i) for i in impostor_ids if i not in ctx.images}
    extra = embed_images(model, missing, protocol.execution.forward_chunk) if missing else {}
    inputs, batch = ctx.batch([pairs[r] for r, _, _ in chosen])
    impostor_emb = torch.from_numpy(np.stack(
        [ctx.embeddings[i] if i in ctx.embeddings else extra[i] for i in impostor_ids]))
    probe_emb = torch.from_numpy(inputs.probe_embeddings)
    partner_emb = torch.from_numpy(inputs.partner_embeddings)
    genuine_scores = (probe_emb.double() * partner_emb.double()).sum(dim=1).tolist()
    impostor_scores = (probe_emb.double() * impostor_emb.double()).sum(dim=1).tolist()
    swaps = [PartnerSwap(pair_id=pairs[r].pair_id, probe_image=pairs[r].image_a,
                         probe_identity=pairs[r].identity_a, partner_image=pairs[r].image_b,
                         impostor_image=image, impostor_identity=identity,
                         score_genuine=genuine_scores[j], score_impostor=impostor_scores[j])
             for j, (r, image, identity) in enumerate(chosen)]
    result = run_partner_sensitivity(ctx.methods(), batch, swaps=swaps,
                                     impostor_embeddings=impostor_emb, seed=protocol.seed,
                                     metric=spec.metric, topk_frac=spec.topk_frac)
    write_partner_sensitivity(ctx.folder.root, result)
