"""Keyed random streams: every draw comes from a generator derived from (seed, *keys).

A stream depends only on its key, never on which other streams were drawn before it,
so results do not depend on method order, batch size or shard count (PITFALLS.md #14).
There is no global state here and no default seed.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

Key = str | int

__all__ = ["Key", "numpy_generator", "seed_sequence", "torch_generator"]


def _key_entropy(seed: int, keys: tuple[Key, ...]) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"stream keys must be str or int, got {type(key).__name__}: {key!r}")
    payload = json.dumps([seed, *keys], separators=(",", ":"), ensure_ascii=True)
    return int.from_bytes(hashlib.sha256(payload.encode("ascii")).digest(), "big")


def seed_sequence(seed: int, *keys: Key) -> np.random.SeedSequence:
    """Return the SeedSequence of the stream named by ``(seed, *keys)``.

    Parameters
    ----------
    seed : int
        The experiment's seed (non-negative).
    *keys : str or int
        The stream's name, e.g. ``("pair_0042", "synthetic_cnn", "random", "high", 3)``.

    Returns
    -------
    numpy.random.SeedSequence
        Seeded from the SHA-256 of the JSON-encoded key, so distinct keys give
        independent streams and the same key gives the same stream in any process.
    """
    return np.random.SeedSequence(_key_entropy(seed, keys))


def numpy_generator(seed: int, *keys: Key) -> np.random.Generator:
    """Return a fresh PCG64 generator for the stream ``(seed, *keys)``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *keys)))


def torch_generator(seed: int, *keys: Key) -> torch.Generator:
    """Return a fresh CPU ``torch.Generator`` for the stream ``(seed, *keys)``."""
    state = seed_sequence(seed, *keys).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator
