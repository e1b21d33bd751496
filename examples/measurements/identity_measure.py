"""Measure |explained score - score_clean| per built-in method on a protocol's first pairs."""
import sys
import time

import torch

torch.set_num_threads(1)
from pathlib import Path

from faceattr.attribution.explained import observe_explained
from faceattr.attribution.registry import METHODS, build_method
from faceattr.experiments.context import (
    attribute_in_fixed_chunks,
    attribution_batch,
    build_model,
    build_source,
    embed_images,
    load_images,
    pair_inputs,
)
from faceattr.experiments.target_identity import identity_checks
from faceattr.protocol import load_protocol
from faceattr.testing.methods import BUILTIN_CHECK_PARAMS

protocol = load_protocol(Path(sys.argv[1]))
n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
names = sys.argv[3].split(",") if len(sys.argv) > 3 else sorted(METHODS)
source = build_source(protocol)
pairs = source.pairs()[:n]
images = load_images(source, pairs)
model = build_model(protocol)
emb = embed_images(model, images, protocol.execution.forward_chunk)
inputs = pair_inputs(pairs, images, emb)
batch = attribution_batch(model, inputs, protocol.seed)
for name in names:
    params = dict(BUILTIN_CHECK_PARAMS.get(name, {}))
    try:
        method = build_method(name, name, params, "measure")
    except Exception as exc:
        print(f"{name:28s} build failed: {exc}"); continue
    if method.info.is_control:
        print(f"{name:28s} control (exempt)"); continue
    t = time.time()
    try:
        with observe_explained(batch.probes, batch.partner_embeddings) as obs:
            attribute_in_fixed_chunks(method, batch)
    except Exception as exc:
        print(f"{name:28s} attribution failed: {type(exc).__name__}: {str(exc)[:80]}"); continue
    checks = identity_checks(name, obs, inputs)
    vals = obs.at_probes()
    gaps = [abs(c.explained - c.score_clean) for c in checks if c.explained is not None]
    print(f"{name:28s} passed {sum(c.passed for c in checks)}/{len(checks)} max|diff| "
          f"{max(gaps) if gaps else float('nan'):.3g} tol>={min(c.tolerance for c in checks):.3g} "
          f"input_dist max {max(v.input_distance for v in vals if v) if any(vals) else float('nan'):.3g} "
          f"diff'd {all(v.differentiated for v in vals if v)} ({time.time()-t:.1f}s)")
    for c in checks:
        if not c.passed:
            print("   ", c.reason[:200]); break
