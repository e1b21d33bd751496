"""Train the synthetic-world CNN reproducibly.

Usage::

    python -m faceattr.models.train_synthetic --seed 0 --out faceattr/assets/models/synthetic_cnn.pt
    python -m faceattr.models.train_synthetic --seed 0 --difficulty 2 \
        --out faceattr/assets/models/synthetic_cnn_d2.pt

Trains :class:`~faceattr.models.synthetic_cnn.SyntheticFaceCNN` with a CosFace loss (normalised
class weights, scale ``s``, additive cosine margin ``m``) over identities ``0..199`` of the
synthetic world, rendering every image on the fly (each image is a fresh view, no flips). All
randomness is keyed: parameter init from ``torch_generator(seed, "train_synthetic", "init")`` and
batch sampling from ``numpy_generator(seed, "train_synthetic", "batches")``. Run it with one torch
thread (the command sets it) for bit-reproducible weights on a given torch version.
``--difficulty`` picks the level of the synthetic world (:mod:`faceattr.data.synthetic`) used for
training and for the held-out evaluation (default 0, the original world).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceattr.data.synthetic import DIFFICULTY_LEVELS, check_difficulty, synthetic_batch
from faceattr.io import atomic_write_bytes
from faceattr.models.synthetic_cnn import EMBEDDING_DIM, SyntheticFaceCNN, load_synthetic_model
from faceattr.models.synthetic_eval import evaluate_synthetic_model
from faceattr.rng import numpy_generator, torch_generator

__all__ = ["TrainConfig", "init_parameters", "main", "train_synthetic_model"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the synthetic-CNN training run.

    Parameters
    ----------
    seed : int
        Seed of the init and batch-sampling streams.
    world_seed : int
        Seed of the synthetic world.
    n_identities : int
        Training identities ``0 .. n_identities - 1``.
    steps, batch_size : int
        Optimiser steps and images per step.
    lr, weight_decay : float
        AdamW learning rate (peak, linear warm-up then cosine decay) and weight decay.
    warmup_steps : int
        Linear warm-up length.
    cosface_scale, cosface_margin : float
        CosFace ``s`` and ``m``.
    difficulty : int
        Difficulty level of the synthetic world (0: the original world).
    """

    seed: int = 0
    world_seed: int = 0
    n_identities: int = 200
    steps: int = 450
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 25
    cosface_scale: float = 30.0
    cosface_margin: float = 0.30
    difficulty: int = 0

    def __post_init__(self) -> None:
        check_difficulty(self.difficulty)


def init_parameters(network: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter and buffer of ``network`` from ``generator`` only.

    Convolutions get Kaiming-normal (fan-out, ReLU) weights, linear layers Xavier-uniform weights
    and zero biases, BatchNorm unit scale, zero shift and reset running statistics.

    Parameters
    ----------
    network : torch.nn.Module
        A materialised (not meta) module, e.g. after ``to_empty``.
    generator : torch.Generator
        The only source of random numbers.
    """
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu",
                                        generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()


def _learning_rate(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_synthetic_model(config: TrainConfig, *,
                          log_every: int = 50) -> tuple[SyntheticFaceCNN, list[float]]:
    """Train the CNN and return it (eval mode) with the per-step training losses.

    Parameters
    ----------
    config : TrainConfig
        Hyper-parameters and seeds.
    log_every : int
        Print the mean loss every this many steps (0: silent).

    Returns
    -------
    network : SyntheticFaceCNN
        The trained network in eval mode.
    losses : list of float
        CosFace loss of every step.
    """
    generator = torch_generator(config.seed, "train_synthetic", "init")
    with torch.device("meta"):
        network = SyntheticFaceCNN()
    network = network.to_empty(device="cpu")
    init_parameters(network, generator)
    class_weights = nn.Parameter(torch.empty(config.n_identities, EMBEDDING_DIM))
    with torch.no_grad():
        class_weights.normal_(0.0, 1.0, generator=generator)
    optimiser = torch.optim.AdamW([*network.parameters(), class_weights], lr=config.lr,
                                  weight_decay=config.weight_decay)
    batches = numpy_generator(config.seed, "train_synthetic", "batches")
    losses: list[float] = []
    network.train()
    for step in range(config.steps):
        identities = batches.integers(0, config.n_identities, size=config.batch_size)
        views = [step * config.batch_size + i for i in range(config.batch_size)]
        images, _ = synthetic_batch(config.world_seed, identities.tolist(), views,
                                    config.difficulty)
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
    return network, losses


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Command-line entry point: train, save the ``state_dict``, evaluate, print the numbers.

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    dict of str to float
        Wall time, final loss and the held-out evaluation of the saved weights.
    """
    parser = argparse.ArgumentParser(prog="python -m faceattr.models.train_synthetic",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = TrainConfig()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--world-seed", type=int, default=defaults.world_seed)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--difficulty", type=int, default=defaults.difficulty,
                        choices=DIFFICULTY_LEVELS)
    parser.add_argument("--eval-pairs", type=int, default=500)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = TrainConfig(seed=args.seed, world_seed=args.world_seed, steps=args.steps,
                         batch_size=args.batch_size, difficulty=args.difficulty)
    print(json.dumps({"config": asdict(config)}, sort_keys=True), flush=True)
    start = time.perf_counter()
    network, losses = train_synthetic_model(config)
    train_s = time.perf_counter() - start
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    atomic_write_bytes(args.out, buffer.getvalue())
    model = load_synthetic_model(args.out)
    start = time.perf_counter()
    metrics = evaluate_synthetic_model(model, world_seed=config.world_seed,
                                       n_pairs=args.eval_pairs, difficulty=config.difficulty)
    results = {"train_wall_s": train_s, "eval_wall_s": time.perf_counter() - start,
               "final_loss_mean_last50": float(np.mean(losses[-50:])), **metrics}
    print(json.dumps({"weights_sha256": model.weights_sha256, "results": results},
                     sort_keys=True, indent=2), flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
