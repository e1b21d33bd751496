"""The fresh process of the ``fresh_process_determinism`` check (``python -m``; not an API).

Reads the spec the parent wrote (the method's name and parameters, the model, the batch file),
builds the method by name exactly as a run does, attributes the batch and saves the maps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceattr.attribution.base import AttributionBatch
from faceattr.attribution.registry import build_method
from faceattr.models.base import VerificationModel
from faceattr.testing._common import tiny_model


def _model(spec: dict[str, Any]) -> VerificationModel:
    if spec["kind"] == "tiny":
        return tiny_model(int(spec["seed"]))
    if spec["kind"] == "name":
        from faceattr.models.loading import load_model

        return load_model(str(spec["name"]))
    # the parent's model object: its network class (rebuilt with no arguments) and state_dict
    import pkgutil

    try:
        network = pkgutil.resolve_name(str(spec["network"]))()
        network.load_state_dict(torch.load(spec["path"], weights_only=True), strict=True)
    except Exception as exc:  # noqa: BLE001 - the user's class; reported as the check's failure
        reason = " ".join(str(exc).split())
        raise TypeError(f"the model's network {spec['network']} cannot be rebuilt in a fresh "
                        f"process with no arguments ({type(exc).__name__}: {reason}); pass the "
                        "model by name or by the import path of its loader "
                        "('package.module:load')") from None
    return VerificationModel(name=str(spec["name"]), network=network.eval(),
                             input_size_px=int(spec["input_size_px"]),
                             pixel_mean=float(spec["pixel_mean"]),
                             pixel_scale=float(spec["pixel_scale"]),
                             weights_sha256=str(spec["weights_sha256"]))


def main(argv: list[str]) -> int:
    """Compute the maps the spec file ``argv[0]`` describes; write them to its ``out``."""
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    torch.set_num_threads(int(spec["threads"]))
    if spec["deterministic"]:
        torch.use_deterministic_algorithms(True)
    model = _model(spec["model"])
    data = torch.load(spec["batch"], weights_only=True)
    masks = data["masks"].numpy() if spec["has_masks"] else None
    batch = AttributionBatch(model=model, probes=data["probes"],
                             partner_embeddings=data["partners"],
                             pair_ids=tuple(spec["pair_ids"]), identity_masks=masks,
                             seed=int(spec["seed"]))
    method = build_method(spec["method_id"], spec["method"], spec["params"],
                          "faceattr.testing (fresh process)")
    np.save(spec["out"], np.asarray(method.attribute(batch)), allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
