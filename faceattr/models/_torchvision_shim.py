"""The few torchvision functions facenet-pytorch and onnx2torch use, in pure torch, for import
time only.

facenet-pytorch 2.6.0 imports ``torchvision.transforms.functional.to_tensor`` and
``torchvision.ops.boxes.batched_nms`` at module level, and nothing else from torchvision. Its
pins (torch<2.3, torchvision<0.18) conflict with faceattr's torch, and a CPU torchvision matching
the installed torch is not always available; so when ``import torchvision`` fails,
:func:`import_facenet_pytorch` registers small stand-in modules just while facenet-pytorch is
imported, then removes them from ``sys.modules`` (nothing else in the process sees a fake
torchvision). When a working torchvision is installed it is used and this shim is not.

onnx2torch 1.5.15 (https://github.com/ENOT-AutoDL/onnx2torch) imports torchvision in two of its
node converters: ``onnx2torch/node_converters/nms.py`` (``import torchvision``; it calls
``torchvision.ops.nms`` and ``torchvision.ops.box_convert`` when converting an ONNX
``NonMaxSuppression``) and ``onnx2torch/node_converters/roialign.py`` (``from torchvision.ops
import roi_align``). :func:`import_onnx2torch` imports it the same way: :func:`nms` and
:func:`box_convert` are real implementations in pure torch; :func:`roi_align` raises
``NotImplementedError`` when called (no face-verification embedder uses ``RoiAlign``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import torch

__all__ = ["batched_nms", "box_convert", "import_facenet_pytorch", "import_onnx2torch", "nms",
           "roi_align", "to_tensor", "torchvision_available"]

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
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    b = boxes.detach().to("cpu", torch.float64)
    order = torch.argsort(-scores.detach().to("cpu", torch.float64), stable=True)
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(b), dtype=torch.bool)
    keep: list[int] = []
    for i in order.tolist():
        if bool(suppressed[i]):
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0.0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0.0)
        inter = w * h
        iou = inter / (areas[i] + areas - inter)  # 0 / 0 = nan for degenerate boxes: not > t
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


_BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """torchvision's ``box_convert`` for the ``"xyxy"``, ``"xywh"`` and ``"cxcywh"`` formats.

    ``xyxy`` is (x1, y1, x2, y2); ``xywh`` is (x1, y1, width, height); ``cxcywh`` is (centre x,
    centre y, width, height). ``boxes`` is (..., 4); the result has the same shape and dtype.
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in _BOX_FORMATS:
            raise ValueError(f"unsupported box format {fmt!r}; expected one of {_BOX_FORMATS}")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    if out_fmt == "cxcywh":
        return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)
    return torch.stack((x1, y1, x2, y2), dim=-1)


def roi_align(*args: Any, **kwargs: Any) -> torch.Tensor:
    """Placeholder for ``torchvision.ops.roi_align``: lets onnx2torch import; raises if called.

    Raises
    ------
    NotImplementedError
        Always: converting a graph with ONNX ``RoiAlign`` needs a real torchvision.
    """
    raise NotImplementedError("RoiAlign needs torchvision.ops.roi_align, and torchvision is not "
                              "installed; install a torchvision matching the installed torch")


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
    modules["torchvision.ops.boxes"].box_convert = box_convert  # type: ignore[attr-defined]
    modules["torchvision.ops"].nms = nms  # type: ignore[attr-defined]
    modules["torchvision.ops"].batched_nms = batched_nms  # type: ignore[attr-defined]
    modules["torchvision.ops"].box_convert = box_convert  # type: ignore[attr-defined]
    modules["torchvision.ops"].roi_align = roi_align  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = (  # type: ignore[attr-defined]
        modules["torchvision.transforms.functional"])
    modules["torchvision.ops"].boxes = modules["torchvision.ops.boxes"]  # type: ignore[attr-defined]
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision"].ops = modules["torchvision.ops"]  # type: ignore[attr-defined]
    return modules


def _import_with_shim(module_name: str) -> types.ModuleType:
    """Import ``module_name`` with the stand-in torchvision in ``sys.modules`` (only if needed)."""
    if torchvision_available():
        return importlib.import_module(module_name)
    shims = _shim_modules()
    sys.modules.update(shims)
    try:
        return importlib.import_module(module_name)
    finally:
        for name, module in shims.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


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
    return _import_with_shim("facenet_pytorch")


def import_onnx2torch() -> types.ModuleType:
    """Import ``onnx2torch`` (ENOT-AutoDL/onnx2torch 1.5.15), with the torchvision stand-in only
    if needed.

    onnx2torch's node converters bind ``torchvision`` (the module) and
    ``torchvision.ops.roi_align`` at import time, so after the stand-in leaves ``sys.modules``
    onnx2torch keeps calling :func:`nms`, :func:`box_convert` and :func:`roi_align`.

    Returns
    -------
    types.ModuleType
        The ``onnx2torch`` package (``onnx2torch.convert`` is its converter).

    Raises
    ------
    ImportError
        One line with the install command when onnx2torch is not installed.
    """
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    if importlib.util.find_spec("onnx2torch") is None:
        raise ImportError("onnx2torch is not installed; install it with: "
                          "pip install --no-deps onnx2torch==1.5.15 onnx")
    return _import_with_shim("onnx2torch")
