"""Make the study's model and data (nothing third-party; everything here is generated).

- ``<out>/model.onnx``: a small torch network — faceattr's synthetic-world CNN (shipped inside
  faceattr, trained by ``python -m faceattr.models.train_synthetic``) — exported to ONNX with a
  dynamic batch axis, the way a lab exports its own model. Input: 64 x 64 RGB in 0..255,
  normalised inside the graph (``x / 255``), 128-d output.
- ``<out>/faces/<identity>/<view>.png`` and ``<out>/faces/pairs.csv``: pairs of the synthetic
  face world (held-out identities) as files, in the (image_a, image_b, same) form face datasets
  ship their verification protocols in.

Usage: ``python -m mystudy.make_assets OUT_DIR [--n-pairs 40]``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.models.synthetic_cnn import load_synthetic_model


class _Scaled(torch.nn.Module):
    """The network on 0..255 pixels (the normalisation is part of the exported graph)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.network(pixels / 255.0)
        return out


def export_model(out: Path) -> Path:
    """Export the synthetic CNN to ``out/model.onnx`` (dynamic batch)."""
    model = load_synthetic_model()
    wrapped = _Scaled(model.network).eval()
    path = out / "model.onnx"
    torch.onnx.export(wrapped, (torch.zeros(2, 3, 64, 64),), str(path), input_names=["pixels"],
                      output_names=["embedding"], opset_version=17, dynamo=False,
                      dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
    return path


def write_pairs(out: Path, n_pairs: int) -> Path:
    """Write the pairs' images (PNG) and ``pairs.csv`` under ``out/faces``."""
    source = SyntheticPairSource(world_seed=7, n_pairs=n_pairs, genuine_fraction=0.5,
                                 first_identity=5000, sampling_seed=0)
    faces = out / "faces"
    rows = []
    for pair in source.pairs():
        names = []
        for image_id, identity in ((pair.image_a, pair.identity_a), (pair.image_b,
                                                                       pair.identity_b)):
            name = f"{identity}/{image_id.replace(':', '_').replace('/', '_')}.png"
            path = faces / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = np.clip(source.load_image(image_id).image * 255.0 + 0.5, 0, 255)
                Image.fromarray(pixels.astype(np.uint8).transpose(1, 2, 0)).save(path)
            names.append(name)
        rows.append((names[0], names[1], int(pair.is_genuine)))
    table = faces / "pairs.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_a", "image_b", "same"])
        writer.writerows(rows)
    return table


def main(argv: list[str] | None = None) -> int:
    """Write the model and the data into OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n-pairs", type=int, default=40)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(export_model(args.out))
    print(write_pairs(args.out, args.n_pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
