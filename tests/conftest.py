"""Shared test setup: one torch thread (two competing threads slow torch 10-40x here)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
