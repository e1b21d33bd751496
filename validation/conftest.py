"""This checkout's gate: the installable plugin (:mod:`faceattr.gate.plugin`) on the default
protocols below; ``--protocol PATH`` replaces them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("faceattr.gate.plugin",)

PROTOCOL_DIR = Path(__file__).parent / "protocols"
DEFAULT_PROTOCOLS = ("synthetic.toml", "validity.toml", "demo.toml", "real_models/gate_sface.toml")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.option.protocol:
        config.option.protocol = [str(PROTOCOL_DIR / name) for name in DEFAULT_PROTOCOLS]
