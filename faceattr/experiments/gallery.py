"""Attribution gallery: for a few pairs per method, the probe, its map, the two regions and
the first high-region counterfactual the engine used — written as PNG artefacts
(``gallery/*.png`` with an index ``gallery.json``) so the report only embeds files."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

from faceattr.attribution import AttributionBatch, AttributionMethod
from faceattr.falsification.counterfactuals import counterfactuals
from faceattr.falsification.engine import FalsificationSettings
from faceattr.falsification.regions import Regions
from faceattr.io import atomic_write_bytes, write_json
from faceattr.rng import numpy_generator

__all__ = ["write_gallery"]


def _panel(image: NDArray[np.float32], relevance: NDArray[np.float64], split: object,
           counterfactual: NDArray[np.float32] | None, title: str) -> bytes:
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.3), dpi=80)
    rgb = np.transpose(image, (1, 2, 0))
    axes[0].imshow(rgb)
    axes[0].set_title("probe", fontsize=8)
    axes[1].imshow(relevance, cmap="inferno")
    axes[1].set_title("map (ranked)", fontsize=8)
    overlay = rgb.copy()
    if isinstance(split, Regions):
        flat = overlay.reshape(-1, 3)
        flat[split.high_idx] = 0.5 * flat[split.high_idx] + np.array([0.5, 0.0, 0.0])
        flat[split.low_idx] = 0.5 * flat[split.low_idx] + np.array([0.0, 0.0, 0.5])
    axes[2].imshow(np.clip(overlay, 0, 1))
    axes[2].set_title("S_high red, S_low blue" if isinstance(split, Regions) else "trivial",
                      fontsize=8)
    if counterfactual is not None:
        axes[3].imshow(np.transpose(counterfactual, (1, 2, 0)))
    axes[3].set_title("counterfactual (high, k=0)", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_gallery(root: Path, methods: list[tuple[AttributionMethod, bool]],
                  batch: AttributionBatch, settings: FalsificationSettings) -> None:
    """Write one panel per (pair, method): ``methods`` pairs each method with whether its
    map is ranked by magnitude."""
    entries = []
    probes = batch.probes.detach().cpu().numpy()
    for method, by_magnitude in methods:
        try:
            maps = method.attribute(batch)
        except Exception as exc:  # noqa: BLE001 — shown in the gallery index, never hidden
            entries.append({"method": method.method_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        for i, pair_id in enumerate(batch.pair_ids):
            ranked = np.abs(maps[i]) if by_magnitude else maps[i]
            split = settings.split(ranked)
            cf = None
            if isinstance(split, Regions):
                rng = numpy_generator(batch.seed, pair_id, batch.model.name, method.method_id,
                                      "high", 0)
                cf = counterfactuals(probes[i], split.high_idx, fill=settings.fill,
                                     perturbation_sigma=settings.perturbation_sigma,
                                     rngs=[rng], blur_sigma_px=settings.blur_sigma_px)[0]
            png = _panel(probes[i], ranked, split, cf, f"{method.method_id} / {pair_id}")
            name = f"gallery/{pair_id}__{method.method_id}.png"
            atomic_write_bytes(root / name, png)
            entries.append({"method": method.method_id, "pair_id": pair_id, "file": name,
                            "sha256": hashlib.sha256(png).hexdigest()})
    write_json(root / "gallery.json", {"entries": entries})
