"""The two torchvision functions facenet-pytorch 2.6.0 uses, in pure torch, for import time only.

facenet-pytorch imports ``torchvision.transforms.functional.to_tensor`` and
``torchvision.ops.boxes.batched_nms`` at module level, and nothing else from torchvision. Its
pins (torch<2.3, torchvision<0.18) conflict with faceattr's torch, and a CPU torchvision matching
the installed torch is not always available; so when ``import torchvision`` fails,
:func:`import_facenet_pytorch` registers small stand-in modules just while facenet-pytorch is
imported, then removes them from ``sys.modules`` (nothing else in the process sees a fake
torchvision). When a working torchvision is installed it is used and this shim is not.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import torch

__all__ = ["batched_nms", "import_facenet_pytorch", "nms", "to_tensor", "torchvision_available"]

_SHIM_MODULES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
                 "torchvision.ops", "torchvision.ops.boxes")


def to_tensor(pic: Any) -> torch.Tensor:
    """torchvision's ``to_tensor`` for what facenet-pytorch passes: (H, W, C) arrays and PIL.

    uint8 input is scaled to [0, 1]; float input is kept as is (torchvision's behaviour); the
    result is (C, H, W).
    """
    array = np.asarray(pic)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32).div(255.0)
    return tensor


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's conventions.

    Boxes are (x1, y1, x2, y2) with area ``(x2 - x1) * (y2 - y1)``; a box is dropped when its IoU
    with a kept, higher-scoring box is strictly greater than ``iou_threshold``. Returns the kept
    indices (int64) in decreasing score order.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    b = boxes.detach().to("cpu", torch.float64).numpy()
    s = scores.detach().to("cpu", torch.float64).numpy()
    order = np.argsort(-s, kind="stable")
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(b), dtype=bool)
    keep: list[int] = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        w = np.clip(np.minimum(x2[i], x2) - np.maximum(x1[i], x1), 0.0, None)
        h = np.clip(np.minimum(y2[i], y2) - np.maximum(y1[i], y1), 0.0, None)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """NMS independently per category ``idxs`` (torchvision's coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def torchvision_available() -> bool:
    """Whether a working torchvision imports in this process (its ops must load too)."""
    if "torchvision" in sys.modules and getattr(sys.modules["torchvision"], "_faceattr_shim",
                                                False):
        return False
    try:
        importlib.import_module("torchvision.ops.boxes")
        importlib.import_module("torchvision.transforms.functional")
    except (ImportError, RuntimeError, OSError, AttributeError):
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]  # drop a half-imported, broken torchvision
        return False
    return True


def _shim_modules() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in _SHIM_MODULES}
    for module in modules.values():
        module._faceattr_shim = True  # type: ignore[attr-defined]
    modules["torchvision.transforms.functional"].to_tensor = to_tensor  # type: ignore[attr-defined]
    modules["torchvision.ops.boxes"].batched_nms = batched_nms  # type: ignore[attr-defined]
    modules["torchvision.ops.boxes"].nms = nms  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = (  # type: ignore[attr-defined]
        modules["torchvision.transforms.functional"])
    modules["torchvision.ops"].boxes = modules["torchvision.ops.boxes"]  # type: ignore[attr-defined]
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision"].ops = modules["torchvision.ops"]  # type: ignore[attr-defined]
    return modules


def import_facenet_pytorch() -> types.ModuleType:
    """Import ``facenet_pytorch``, with the pure-torch torchvision stand-in only if needed.

    Raises
    ------
    ImportError
        One line with the install command when facenet-pytorch is not installed.
    """
    if "facenet_pytorch" in sys.modules:
        return sys.modules["facenet_pytorch"]
    if importlib.util.find_spec("facenet_pytorch") is None:
        raise ImportError("facenet-pytorch is not installed; install it with: "
                          "pip install --no-deps facenet-pytorch==2.6.0 requests")
    if torchvision_available():
        return importlib.import_module("facenet_pytorch")
    shims = _shim_modules()
    sys.modules.update(shims)
    try:
        return importlib.import_module("facenet_pytorch")
    finally:
        for name, module in shims.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
