"""Shared inputs for the attribution tests: models, batches and small per-method parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from faceattr.attribution import AttributionBatch
from faceattr.experiments.context import take_rows
from faceattr.models.base import VerificationModel
from faceattr.models.loading import load_model
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.rng import numpy_generator
from faceattr.testing import BUILTIN_CHECK_PARAMS
from faceattr.testing.methods import BUILTIN_CHECK_MODELS
from tests.helpers import tiny_model

# The models every method is smoke-tested on. Hook for CI: dlib's ResNet is added here
# (e.g. "dlib_resnet": load_dlib_model) once its loader lands; FaceNet likewise.
MODELS: dict[str, Callable[[], VerificationModel]] = {
    "synthetic_cnn": load_synthetic_model,
    "tiny": tiny_model,
}

# Small settings so the whole suite stays fast on one CPU thread; every registry entry must
# appear here (a registry test enforces it), so a new method is smoke-tested by construction.
# the small settings the built-ins are checked with (one table: faceattr.testing's)
METHOD_PARAMS: dict[str, dict[str, Any]] = {k: dict(v) for k, v in BUILTIN_CHECK_PARAMS.items()}

_CACHE: dict[str, VerificationModel] = {}


def model(name: str) -> VerificationModel:
    if name not in _CACHE:
        _CACHE[name] = MODELS[name]()
    return _CACHE[name]


# Built-ins that need an architecture the models above lack (attention layers, Inception
# blocks) raise UnsupportedModelError on them; they are tested on the shipped model that
# faceattr.testing checks them on (BUILTIN_CHECK_MODELS).
ARCHITECTURE_SPECIFIC = frozenset(BUILTIN_CHECK_MODELS)


def model_for(method: str, default: str) -> VerificationModel:
    name = BUILTIN_CHECK_MODELS.get(method, default)
    if name not in _CACHE:
        _CACHE[name] = MODELS[name]() if name in MODELS else load_model(name)
    return _CACHE[name]


def make_batch(vmodel: VerificationModel, n: int, *, seed: int = 0,
               pair_offset: int = 0) -> AttributionBatch:
    side = vmodel.input_size_px
    rng = numpy_generator(11, "attribution-tests", vmodel.name)
    images = rng.random((2 * (n + pair_offset), 3, side, side)).astype(np.float32)
    # smooth-ish images: a low-frequency pattern plus texture, so maps are not flat
    images = np.clip(0.5 * images + 0.5 * images.mean(axis=1, keepdims=True), 0, 1)
    probes = torch.from_numpy(images[pair_offset:pair_offset + n])
    partners_x = torch.from_numpy(images[n + 2 * pair_offset:2 * n + 2 * pair_offset])
    with torch.no_grad():
        partners = vmodel.embed(partners_x)
    masks = np.zeros((n, side, side), dtype=bool)
    masks[:, side // 4:side // 2, side // 4:3 * side // 4] = True
    return AttributionBatch(model=vmodel, probes=probes, partner_embeddings=partners,
                            pair_ids=tuple(f"p{pair_offset + i}" for i in range(n)),
                            identity_masks=masks, seed=seed)


def row(batch: AttributionBatch, i: int) -> AttributionBatch:
    return take_rows(batch, [i])
