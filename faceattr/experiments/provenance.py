"""Provenance of a run: versions, commit, hashes, seeds (deterministic) and timings (apart)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "package_versions", "provenance"]

_PACKAGES = ("faceattr", "torch", "captum", "numpy", "scipy", "statsmodels", "jinja2",
             "matplotlib")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the numbers depend on."""
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(directory: Path) -> str:
    """HEAD commit of the checkout holding ``directory`` (``"unknown"`` outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def provenance(*, protocol_sha256: str, manifest_sha256: str, seed: int, model: str,
               weights_sha256: str, threads: int,
               device: dict[str, Any] | None = None) -> dict[str, Any]:
    """The deterministic provenance block of a run (no timestamps).

    ``device`` is :meth:`faceattr.devices.DeviceSettings.to_json` of the run's device (its
    name and the deterministic torch settings it computes under); None: the CPU, unrecorded.
    """
    document: dict[str, Any] = {
        "git_commit": git_commit(Path(__file__).parent),
        "packages": package_versions(), "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": "cpu" if device is None else device["device"],
        "torch_threads": threads, "protocol_sha256": protocol_sha256,
        "manifest_sha256": manifest_sha256, "seed": seed, "model": model,
        "weights_sha256": weights_sha256}
    if device is not None:
        document["device_settings"] = device
    return document
