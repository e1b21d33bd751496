import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from faceattr.attribution import AttributionBatch, build_method
from faceattr.experiments.context import build_model, build_source
from faceattr.models.base import embed_batched
from faceattr.protocol import load_protocol
from faceattr.randomisation.repaired import RepairedSettings
from faceattr.randomisation.stage import run_randomisation

proto = load_protocol("validation/protocols/synthetic.toml")
source = build_source(proto); pairs = source.pairs(); model = build_model(proto)
probes = torch.from_numpy(np.stack([source.load_image(p.image_a).image for p in pairs]))
partners = torch.from_numpy(np.stack([source.load_image(p.image_b).image for p in pairs]))
batch = AttributionBatch(model=model, probes=probes, partner_embeddings=embed_batched(model, partners, chunk_size=64),
    pair_ids=tuple(p.pair_id for p in pairs), identity_masks=None, seed=proto.seed)
names = sys.argv[1].split(",")
S = int(sys.argv[2]); order = sys.argv[3]
params = {"integrated_gradients": {"n_steps": 32, "baseline": "black"}, "geodesic_ig": {"n_steps": 32, "baseline": "black"}, "grad_cam": {"layer": "conv4"}, "inverted": {"of": "oracle"}}
for n in names:
    m = build_method(n, n, params.get(n, {}), "t")
    t=time.time()
    res = run_randomisation(model, [m], batch, partner_images=partners, seed=proto.seed, n_pairs=8)
    t1=time.time()-t; t=time.time()
    res = run_randomisation(model, [m], batch, partner_images=partners, seed=proto.seed, n_pairs=8,
        repaired=RepairedSettings(methods=(n,), n_samples=S, noise_frac=0.1, layer_order=order, smprt_abs=True, emprt_abs=False, n_bins=100))
    t2=time.time()-t
    c = res.repaired.methods[0]
    if c.error: print(n, c.error); continue
    r = [x for x in c.complexity_ratio if x is not None]
    print(f"{n:22s} classic {t1:.1f}s +repaired {t2-t1:.1f}s  smprt", [round(s.mean,3) for s in c.smprt], " emprt ratio mean", round(float(np.mean(r)),3), "H0", round(float(np.mean(c.complexity_before)),3), "undef", sum(x is None for x in c.complexity_ratio), "const", sum(c.smoothed_constant))
