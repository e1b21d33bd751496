"""Shared fixture: one randomisation run on the synthetic model (about 2 s on one thread)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from faceattr.attribution import build_method
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.randomisation.stage import run_randomisation
from tests.randomisation.common import N_PAIRS, Broken, EdgeMap, synthetic_pairs


@pytest.fixture(scope="session")
def synthetic() -> dict[str, Any]:
    model = load_synthetic_model()
    data = synthetic_pairs(model, n_pairs=8)
    methods = [build_method("saliency", "saliency", {}, "test"),
               build_method("random", "random", {}, "test"),
               EdgeMap("edge"), Broken("broken")]
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    rng_state = torch.random.get_rng_state()
    result = run_randomisation(model, methods, data.batch, partner_images=data.partner_images,
                               seed=0, n_pairs=N_PAIRS)
    return {"model": model, "data": data, "result": result, "before": before,
            "rng_state": rng_state, "rng_after": torch.random.get_rng_state()}
