"""Attention rollout's falsification rate and ground-truth quality on the vit_synthetic pairs,
computed with the engine's own functions (falsify_maps, map_quality) but without the run's
target-identity check (rollout explains no scalar, so a run records error:target_identity for
every pair). gradient_rollout and saliency are recomputed the same way as a check against the
run's records. Usage: python measure_vit.py validation/protocols/studies/vit_synthetic.toml"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
from statsmodels.stats.proportion import proportion_confint

from faceattr.attribution.gradient import Saliency
from faceattr.attribution.rollout import AttentionRollout, GradientAttentionRollout
from faceattr.experiments.context import (
    attribute_in_fixed_chunks,
    attribution_batch,
    build_model,
    build_source,
    falsification_settings,
    load_pair_inputs,
)
from faceattr.falsification.engine import falsify_maps
from faceattr.falsification.quality import map_quality
from faceattr.protocol import load_protocol

protocol = load_protocol(Path(sys.argv[1]))
source, model = build_source(protocol), build_model(protocol)
pairs = source.pairs()
inputs = load_pair_inputs(source, pairs, model, 64)
batch = attribution_batch(model, inputs, protocol.seed)
settings = falsification_settings(protocol)
methods = {"attention_rollout": AttentionRollout("attention_rollout"),
           "attention_rollout_max": AttentionRollout("attention_rollout_max",
                                                     AttentionRollout.Params(head_fusion="max")),
           "gradient_rollout": GradientAttentionRollout("gradient_rollout"),
           "saliency": Saliency("saliency")}
out = {}
for name, method in methods.items():
    maps = attribute_in_fixed_chunks(method, batch).maps
    records = []
    for s in range(0, len(pairs), 25):
        sub = type(inputs)(pairs=inputs.pairs[s:s+25], probes=inputs.probes[s:s+25],
                           probe_embeddings=inputs.probe_embeddings[s:s+25],
                           partner_embeddings=inputs.partner_embeddings[s:s+25],
                           identity_masks=inputs.identity_masks[s:s+25])
        records += falsify_maps(model, sub, maps[s:s+25], method_id=name, seed=protocol.seed,
                                settings=settings)
    q = [map_quality(m, k) for m, k in zip(maps, inputs.identity_masks)]
    n = len(records)
    ft = sum(r.falsified_theorem for r in records); fs = sum(r.falsified_simple for r in records)
    lo, hi = proportion_confint(ft, n, alpha=0.05, method="wilson")
    out[name] = {"fr_theorem": ft / n, "fr_theorem_wilson95": [lo, hi], "fr_simple": fs / n,
                 "n": n, "n_trivial": sum(r.status == "trivial" for r in records),
                 "mask_auc_mean": float(np.mean([x.roc_auc for x in q])),
                 "rank_accuracy_mean": float(np.mean([x.rank_accuracy for x in q])),
                 "mean_d_high_rad": float(np.nanmean([r.d_high_rad for r in records if r.d_high_rad is not None])),
                 "mean_d_low_rad": float(np.nanmean([r.d_low_rad for r in records if r.d_low_rad is not None]))}
print(json.dumps(out, indent=1))
