"""Wall time of attribution with and without the target-identity observer (one batch)."""
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
from faceattr.attribution.explained import observe_explained
from faceattr.experiments.context import (
    attribute_in_fixed_chunks,
    attribution_batch,
    build_methods,
    build_model,
    build_source,
    embed_images,
    load_images,
    pair_inputs,
)
from faceattr.experiments.target_identity import identity_checks
from faceattr.protocol import load_protocol

protocol = load_protocol(Path(sys.argv[1]))
source = build_source(protocol)
pairs = source.pairs()[:protocol.execution.pairs_per_batch]
images = load_images(source, pairs)
model = build_model(protocol)
inputs = pair_inputs(pairs, images, embed_images(model, images, protocol.execution.forward_chunk))
batch = attribution_batch(model, inputs, protocol.seed)
plain = observed = 0.0
for method in build_methods(protocol):
    if method.info.is_control:
        continue
    t = time.perf_counter(); attribute_in_fixed_chunks(method, batch); plain += time.perf_counter() - t
    t = time.perf_counter()
    with observe_explained(batch.probes, batch.partner_embeddings) as obs:
        attribute_in_fixed_chunks(method, batch)
    identity_checks(method.method_id, obs, inputs)
    observed += time.perf_counter() - t
print(f"{sys.argv[1]}: {len(pairs)} pairs, non-control methods: attribution {plain:.2f} s, "
      f"with the identity check {observed:.2f} s (+{100 * (observed / plain - 1):.1f}%)")
