import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from faceattr.attribution import AttributionBatch, build_method
from faceattr.experiments.context import build_model, build_source
from faceattr.models.base import embed_batched
from faceattr.protocol import load_protocol
from faceattr.randomisation.stage import run_randomisation

proto = load_protocol(sys.argv[1] if len(sys.argv) > 1 else "validation/protocols/synthetic.toml")
source = build_source(proto); pairs = source.pairs(); model = build_model(proto)
probes = torch.from_numpy(np.stack([source.load_image(p.image_a).image for p in pairs]))
partners = torch.from_numpy(np.stack([source.load_image(p.image_b).image for p in pairs]))
batch = AttributionBatch(model=model, probes=probes, partner_embeddings=embed_batched(model, partners, chunk_size=64),
    pair_ids=tuple(p.pair_id for p in pairs), identity_masks=None, seed=proto.seed)
names = ["saliency", "guided_backprop", "guided_grad_cam", "grad_cam", "integrated_gradients", "random"]
params = {"integrated_gradients": {"n_steps": 32, "baseline": "black"}, "grad_cam": {"layer": "conv4"}}
ms = [build_method(n, n, params.get(n, {}), "t") for n in names]
for npairs in (8, 32):
    t=time.time()
    res = run_randomisation(model, ms, batch, partner_images=partners, seed=proto.seed, n_pairs=npairs)
    print("n_pairs", npairs, "layers", res.layers, f"{time.time()-t:.1f}s")
    for metric in ("spearman_abs", "ssim", "topk"):
        print(" ", metric)
        for c in res.methods:
            print(f"   {c.method_id:22s}", [round(s.similarity(metric).mean,3) for s in c.cascading], " indep", [round(s.similarity(metric).mean,3) for s in c.independent])
