"""Train the synthetic-world ViT reproducibly, with the synthetic CNN's recipe.

Usage::

    python -m faceattr.models.train_synthetic_vit --seed 0 \
        --out faceattr/assets/models/synthetic_vit.pt

Trains :class:`~faceattr.models.synthetic_vit.SyntheticFaceViT` exactly as
:mod:`faceattr.models.train_synthetic` trains the CNN: a CosFace loss (normalised class weights,
scale ``s``, additive cosine margin ``m``) over identities ``0..199`` of the synthetic world, every
image a fresh on-the-fly render (no flips), AdamW with linear warm-up and cosine decay. Only the
architecture and the optimiser constants differ (transformers train from scratch with a lower
learning rate, a longer warm-up, stronger weight decay and more steps). All randomness is keyed:
parameter init from ``torch_generator(seed, stream, "init")`` and batch sampling from
``numpy_generator(seed, stream, "batches")`` with ``stream = "train_synthetic_vit"``. The command
sets one torch thread, for bit-reproducible weights on a given torch version. The held-out
evaluation is :func:`faceattr.models.synthetic_eval.evaluate_synthetic_model`, as for the CNN.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceattr.data.synthetic import synthetic_batch
from faceattr.io import atomic_write_bytes
from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_eval import evaluate_synthetic_model
from faceattr.models.synthetic_vit import (
    VIT_EMBEDDING_DIM,
    SyntheticFaceViT,
    init_vit_parameters,
    load_synthetic_vit,
)
from faceattr.rng import numpy_generator, torch_generator

__all__ = ["RecipeConfig", "main", "run_training_command", "train_embedding_network"]

STREAM = "train_synthetic_vit"


@dataclass(frozen=True)
class RecipeConfig:
    """Hyper-parameters of one synthetic-world training run (the CNN recipe's fields).

    Parameters
    ----------
    seed, world_seed : int
        Seed of the init and batch streams; seed of the synthetic world.
    n_identities : int
        Training identities ``0 .. n_identities - 1``.
    steps, batch_size, warmup_steps : int
        Optimiser steps, images per step and linear warm-up length.
    lr, weight_decay : float
        AdamW peak learning rate (cosine decay after warm-up) and weight decay.
    cosface_scale, cosface_margin : float
        CosFace ``s`` and ``m``.
    """

    seed: int = 0
    world_seed: int = 0
    n_identities: int = 200
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    cosface_scale: float = 30.0
    cosface_margin: float = 0.30


def _learning_rate(step: int, config: RecipeConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_embedding_network(network: nn.Module, config: RecipeConfig, *, stream: str,
                            embedding_dim: int, log_every: int = 50) -> list[float]:
    """Train an initialised embedding network in place (CosFace, fresh renders); return losses.

    Parameters
    ----------
    network : torch.nn.Module
        Maps (N, 3, 64, 64) images in [0, 1] to (N, embedding_dim); left in eval mode.
    config : RecipeConfig
        Hyper-parameters and seeds.
    stream : str
        Names the keyed streams: class weights from ``torch_generator(seed, stream,
        "class_weights")``, batches from ``numpy_generator(seed, stream, "batches")``.
    embedding_dim : int
        The network's output dimension.
    log_every : int
        Print the mean loss every this many steps (0: silent).

    Returns
    -------
    list of float
        CosFace loss of every step.
    """
    class_weights = nn.Parameter(torch.empty(config.n_identities, embedding_dim))
    with torch.no_grad():
        class_weights.normal_(0.0, 1.0,
                              generator=torch_generator(config.seed, stream, "class_weights"))
    optimiser = torch.optim.AdamW([*network.parameters(), class_weights], lr=config.lr,
                                  weight_decay=config.weight_decay)
    batches = numpy_generator(config.seed, stream, "batches")
    losses: list[float] = []
    network.train()
    for step in range(config.steps):
        identities = batches.integers(0, config.n_identities, size=config.batch_size)
        views = [step * config.batch_size + i for i in range(config.batch_size)]
        images, _ = synthetic_batch(config.world_seed, identities.tolist(), views)
        labels = torch.from_numpy(identities.astype(np.int64))
        embeddings = nn.functional.normalize(network(torch.from_numpy(images)), dim=1)
        cosine = embeddings @ nn.functional.normalize(class_weights, dim=1).T
        margin = nn.functional.one_hot(labels, config.n_identities) * config.cosface_margin
        loss = nn.functional.cross_entropy(config.cosface_scale * (cosine - margin), labels)
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(step, config)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            recent = float(np.mean(losses[-log_every:]))
            print(f"step {step + 1}/{config.steps} loss {recent:.4f}", flush=True)
    network.eval()
    return losses


def _build_vit(generator: torch.Generator) -> nn.Module:
    with torch.device("meta"):
        network = SyntheticFaceViT()
    network = network.to_empty(device="cpu")
    init_vit_parameters(network, generator)
    return network


def run_training_command(argv: Sequence[str] | None, *, prog: str, stream: str,
                         defaults: RecipeConfig,
                         build: Callable[[torch.Generator], nn.Module],
                         load: Callable[[Path], VerificationModel],
                         embedding_dim: int) -> dict[str, float]:
    """Parse arguments, train, save the ``state_dict`` atomically, evaluate held-out, print.

    Returns
    -------
    dict of str to float
        Wall times, final loss and :func:`evaluate_synthetic_model` of the saved weights.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--world-seed", type=int, default=defaults.world_seed)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--eval-pairs", type=int, default=500)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = RecipeConfig(**{**asdict(defaults), "seed": args.seed,
                             "world_seed": args.world_seed, "steps": args.steps,
                             "batch_size": args.batch_size})
    print(json.dumps({"config": asdict(config)}, sort_keys=True), flush=True)
    start = time.perf_counter()
    network = build(torch_generator(config.seed, stream, "init"))
    losses = train_embedding_network(network, config, stream=stream, embedding_dim=embedding_dim)
    train_s = time.perf_counter() - start
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    atomic_write_bytes(args.out, buffer.getvalue())
    model = load(args.out)
    start = time.perf_counter()
    metrics = evaluate_synthetic_model(model, world_seed=config.world_seed,
                                       n_pairs=args.eval_pairs)
    results = {"train_wall_s": train_s, "eval_wall_s": time.perf_counter() - start,
               "final_loss_mean_last50": float(np.mean(losses[-50:])),
               "n_parameters": float(sum(p.numel() for p in network.parameters())), **metrics}
    print(json.dumps({"weights_sha256": model.weights_sha256, "results": results},
                     sort_keys=True, indent=2), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Command-line entry point of the ViT (see the module docstring)."""
    return run_training_command(argv, prog="python -m faceattr.models.train_synthetic_vit",
                                stream=STREAM, defaults=RecipeConfig(), build=_build_vit,
                                load=load_synthetic_vit, embedding_dim=VIT_EMBEDDING_DIM)


if __name__ == "__main__":
    main(sys.argv[1:])
