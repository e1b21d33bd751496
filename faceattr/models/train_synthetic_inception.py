"""Train the synthetic-world Inception-ResNet CNN reproducibly, with the synthetic CNN's recipe.

Usage::

    python -m faceattr.models.train_synthetic_inception --seed 0 \
        --out faceattr/assets/models/synthetic_inception.pt

:class:`~faceattr.models.synthetic_inception.SyntheticInceptionNet` trained with exactly the
CNN's recipe and constants (:class:`faceattr.models.train_synthetic.TrainConfig` defaults: CosFace
s = 30, m = 0.30 over identities 0..199, fresh on-the-fly renders, AdamW lr 3e-3 with 25 warm-up
steps and cosine decay, weight decay 5e-4, 450 steps of 64 images), the CNN's initialisation
(:func:`faceattr.models.train_synthetic.init_parameters`) and keyed streams named
``"train_synthetic_inception"``; one torch thread. The loop is
:func:`faceattr.models.train_synthetic_vit.train_embedding_network`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torch import nn

from faceattr.models.synthetic_inception import (
    INCEPTION_EMBEDDING_DIM,
    SyntheticInceptionNet,
    load_synthetic_inception,
)
from faceattr.models.train_synthetic import TrainConfig, init_parameters
from faceattr.models.train_synthetic_vit import RecipeConfig, run_training_command

__all__ = ["INCEPTION_RECIPE", "main"]

STREAM = "train_synthetic_inception"

_CNN = TrainConfig()
INCEPTION_RECIPE = RecipeConfig(
    seed=_CNN.seed, world_seed=_CNN.world_seed, n_identities=_CNN.n_identities, steps=_CNN.steps,
    batch_size=_CNN.batch_size, lr=_CNN.lr, weight_decay=_CNN.weight_decay,
    warmup_steps=_CNN.warmup_steps, cosface_scale=_CNN.cosface_scale,
    cosface_margin=_CNN.cosface_margin)
"""The synthetic CNN's constants, field for field."""


def _build(generator: torch.Generator) -> nn.Module:
    with torch.device("meta"):
        network = SyntheticInceptionNet()
    network = network.to_empty(device="cpu")
    init_parameters(network, generator)
    return network


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Command-line entry point (see the module docstring)."""
    return run_training_command(argv, prog="python -m faceattr.models.train_synthetic_inception",
                                stream=STREAM, defaults=INCEPTION_RECIPE, build=_build,
                                load=load_synthetic_inception,
                                embedding_dim=INCEPTION_EMBEDDING_DIM)


if __name__ == "__main__":
    main(sys.argv[1:])
