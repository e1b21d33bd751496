"""ONNX graphs to differentiable torch modules, with onnx2torch and one-line errors.

The conversion itself is onnx2torch's (ENOT-AutoDL, https://github.com/ENOT-AutoDL/onnx2torch,
version 1.5.15, Apache-2.0): ``onnx2torch.convert(model_proto)`` builds a ``torch.fx.GraphModule``
whose nodes are ordinary torch operations, so autograd flows from the embedding back to the input
image (what the attribution methods need; onnxruntime has no gradients). This module adds what
a harness needs around it:

- :func:`check_graph_io`: one image input (float32, rank 4, three channels where ``layout``
  puts them, the declared spatial size when the graph fixes it) and one output;
- :func:`make_batch_dynamic`: a graph exported with a fixed batch of 1 gets a symbolic batch
  dimension, and its ``Reshape`` ops whose constant target shape starts with ``1`` copy the
  batch dimension instead (ONNX ``Reshape``: a ``0`` in the shape copies the input's
  dimension, unless ``allowzero = 1``);
- :func:`unconvertible_node`: the first node onnx2torch has no converter for, by the same
  lookup onnx2torch does (``onnx2torch.node_converters.registry.get_converter``), so the error
  names the op, the node, its domain and the opset;
- :func:`convert_onnx`: the conversion, with any converter failure turned into one line that
  names the node it failed on.

onnx2torch is imported through :func:`faceattr.models._torchvision_shim.import_onnx2torch`
(two of its converters import torchvision, which faceattr does not install).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import numpy_helper
from torch import nn

from faceattr.errors import InputError
from faceattr.models._torchvision_shim import import_onnx2torch
from faceattr.models.base import _reason

__all__ = ["BATCH_DIM_PARAM", "REEXPORT_HINT", "check_graph_io", "convert_onnx", "graph_input_dims",
           "make_batch_dynamic", "unconvertible_node"]

BATCH_DIM_PARAM = "faceattr_batch"
"""The symbolic batch dimension :func:`make_batch_dynamic` gives a fixed-batch graph."""

REEXPORT_HINT = ("re-export the model with a dynamic batch axis (torch.onnx.export(..., "
                 "dynamic_axes={input_name: {0: 'batch'}, output_name: {0: 'batch'}}))")
"""How to export a graph whose batch dimension is symbolic (the fix in batch errors)."""


def _real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (old exporters list weights as inputs too)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def graph_input_dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    """The dimensions of a tensor value: an int where fixed, ``None`` where symbolic or unknown;
    ``None`` for a value without a shape."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [int(dim.dim_value) if dim.HasField("dim_value") else None
            for dim in tensor_type.shape.dim]


def _shape_text(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def check_graph_io(model: onnx.ModelProto, *, path: Path, input_size_px: int,
                   layout: Literal["nchw", "nhwc"]) -> None:
    """Check the graph has one float32 image input of the declared layout and size, one output.

    Parameters
    ----------
    model : onnx.ModelProto
    path : pathlib.Path
        The model file, for messages.
    input_size_px : int
        The declared square input side.
    layout : {"nchw", "nhwc"}
        Where the declared channel axis is (1 or 3).

    Raises
    ------
    faceattr.errors.InputError
        One line naming the file, what the graph declares and the key to change.
    """
    inputs = _real_inputs(model)
    if len(inputs) != 1:
        names = ", ".join(repr(value.name) for value in inputs) or "none"
        raise InputError(f"{path}: the ONNX graph has {len(inputs)} inputs ({names}); expected "
                         f"one image input: re-export the model with a single image argument")
    value = inputs[0]
    elem_type = value.type.tensor_type.elem_type
    if not value.type.HasField("tensor_type") or elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(elem_type) if value.type.HasField(
            "tensor_type") else "not a tensor"
        raise InputError(f"{path}: the ONNX graph's input {value.name!r} is {dtype}; expected "
                         f"FLOAT (float32) images: re-export the model in float32")
    dims = graph_input_dims(value)
    if dims is not None:
        if len(dims) != 4:
            raise InputError(f"{path}: the ONNX graph's input {value.name!r} has shape "
                             f"{_shape_text(dims)}; expected rank 4, (N, 3, H, W) for layout = "
                             f"'nchw' or (N, H, W, 3) for layout = 'nhwc'")
        channel_axis, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
        if dims[channel_axis] not in (None, 3):
            other, other_axis = ("nhwc", 3) if layout == "nchw" else ("nchw", 1)
            hint = (f"set layout = {other!r}" if dims[other_axis] == 3
                    else "expected 3 (RGB or BGR) channels")
            raise InputError(f"{path}: the ONNX graph's input {value.name!r} has shape "
                             f"{_shape_text(dims)}, which is not {layout.upper()} with 3 "
                             f"channels; {hint}")
        fixed = [dims[axis] for axis in spatial]
        if any(side is not None and side != input_size_px for side in fixed):
            height, width = fixed
            raise InputError(f"{path}: the ONNX graph's input {value.name!r} has shape "
                             f"{_shape_text(dims)}: {height}x{width} px images, but "
                             f"input_size_px = {input_size_px}; set input_size_px to the size "
                             f"the model was exported with")
    if len(model.graph.output) != 1:
        names = ", ".join(repr(out.name) for out in model.graph.output)
        raise InputError(f"{path}: the ONNX graph has {len(model.graph.output)} outputs "
                         f"({names}); expected one embedding output: re-export the model "
                         f"returning only the embedding")


def _constant_tensors(graph: onnx.GraphProto) -> dict[str, np.ndarray[Any, Any]]:
    """Values known at load time: initializers and ``Constant`` nodes holding a tensor."""
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.HasField("t"):
                constants[node.output[0]] = numpy_helper.to_array(attribute.t)
            elif attribute.name == "value_ints":
                constants[node.output[0]] = np.asarray(list(attribute.ints), dtype=np.int64)
    return constants


def _input_dependent(graph: onnx.GraphProto, inputs: set[str]) -> set[str]:
    """Names of the values computed from the graph inputs (nodes are topologically sorted)."""
    dependent = set(inputs)
    for node in graph.node:
        if any(name in dependent for name in node.input):
            dependent.update(node.output)
    return dependent


def make_batch_dynamic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Give a graph exported with a fixed batch of 1 a symbolic batch dimension.

    When the (single) image input's first dimension is fixed at 1: the inputs' and outputs'
    first dimensions become :data:`BATCH_DIM_PARAM`, the stale intermediate shapes
    (``graph.value_info``) are dropped (onnx2torch re-infers them), and every ``Reshape`` of an
    input-dependent tensor whose target shape is a load-time constant starting with 1 (the
    ``[1, -1]`` / ``[1, 512]`` a fixed-batch export bakes in) gets a copy of that shape starting
    with 0 (copy the batch). Graphs whose batch is already symbolic are returned unchanged.

    Other ways of baking in a batch of 1 (``Expand`` / ``Tile`` to a constant shape, a
    ``Concat`` of constants feeding a ``Reshape``) are not rewritten; the batch check in
    :func:`faceattr.models.files.load_model_file` reports them.

    Returns
    -------
    tuple of (onnx.ModelProto, int)
        The model (a copy when changed) and the number of ``Reshape`` nodes rewritten (``-1``
        when the batch was not fixed at 1 and nothing changed).
    """
    inputs = _real_inputs(model)
    if len(inputs) != 1:
        return model, -1
    dims = graph_input_dims(inputs[0])
    if not dims or dims[0] != 1:
        return model, -1
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    input_names = {value.name for value in _real_inputs(fixed)}
    values = [value for value in graph.input if value.name in input_names]
    for value in [*values, *graph.output]:
        shape_dims = value.type.tensor_type.shape.dim
        if shape_dims and shape_dims[0].HasField("dim_value") and shape_dims[0].dim_value == 1:
            shape_dims[0].dim_param = BATCH_DIM_PARAM  # a oneof: clears dim_value
    del graph.value_info[:]
    constants = _constant_tensors(graph)
    dependent = _input_dependent(graph, input_names)
    taken = {tensor.name for tensor in graph.initializer} | {
        name for node in graph.node for name in node.output}
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[0] not in dependent:
            continue
        if any(a.name == "allowzero" and a.i == 1 for a in node.attribute):
            continue
        target = constants.get(node.input[1])
        if target is None or target.ndim != 1 or target.size < 2 or int(target[0]) != 1:
            continue
        new_target = target.astype(np.int64, copy=True)
        new_target[0] = 0
        name = f"{node.input[1]}__{BATCH_DIM_PARAM}"
        while name in taken:
            name += "_"
        taken.add(name)
        graph.initializer.append(numpy_helper.from_array(new_target, name))
        node.input[1] = name
        rewritten += 1
    return fixed, rewritten


def _onnx2torch_version() -> str:
    try:
        return importlib.metadata.version("onnx2torch")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - imported, so installed
        return "?"


def _node_text(op_type: str, name: str, domain: str, opset: int | None) -> str:
    opset_text = "undeclared" if opset is None else str(opset)
    return (f"op {op_type!r} (node {name or '<unnamed>'!r}, domain {domain or 'ai.onnx'!r}, "
            f"opset {opset_text})")


_FIX = ("re-export the model without it (another opset, or replace that layer in torch before "
        "exporting), or give the model as format = 'torchscript'")


def unconvertible_node(model: onnx.ModelProto) -> str | None:
    """The first node onnx2torch has no converter for, described, or ``None`` if all have one.

    The lookup is onnx2torch's own: the opset of the node's domain from ``model.opset_import``
    and ``onnx2torch.node_converters.registry.get_converter(domain=..., operation_type=...,
    version=...)``, which raises ``NotImplementedError`` for an unregistered operation.
    """
    import_onnx2torch()
    registry = importlib.import_module("onnx2torch.node_converters.registry")
    opsets = {entry.domain: int(entry.version) for entry in model.opset_import}
    for node in model.graph.node:
        opset = opsets.get(node.domain)
        if opset is None:
            return _node_text(node.op_type, node.name, node.domain, None)
        try:
            registry.get_converter(operation_type=node.op_type, version=opset,
                                   domain=node.domain)
        except NotImplementedError:
            return _node_text(node.op_type, node.name, node.domain, opset)
    return None


def _failing_node(exc: BaseException) -> str | None:
    """The node ``onnx2torch.convert`` was converting when ``exc`` was raised, described."""
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        node = frame.f_locals.get("onnx_node")
        if frame.f_code.co_name == "convert" and node is not None:
            opset = frame.f_locals.get("version")
            return _node_text(str(node.operation_type), str(node.name), str(node.domain),
                              opset if isinstance(opset, int) else None)
        traceback = traceback.tb_next
    return None


def convert_onnx(model: onnx.ModelProto, *, path: Path) -> nn.Module:
    """Convert an ONNX model to a torch module with ``onnx2torch.convert``, in eval mode.

    Parameters
    ----------
    model : onnx.ModelProto
        The (checked, batch-fixed) model.
    path : pathlib.Path
        The model file, for messages.

    Returns
    -------
    torch.nn.Module
        onnx2torch's ``torch.fx.GraphModule`` (differentiable torch ops).

    Raises
    ------
    faceattr.errors.InputError
        One line naming the file, the op onnx2torch cannot convert (its node, domain and opset)
        and the fix; or the converter's reason when no single node is to blame.
    """
    version = _onnx2torch_version()
    missing = unconvertible_node(model)
    if missing is not None:
        raise InputError(f"{path}: onnx2torch {version} cannot convert {missing}; {_FIX}")
    onnx2torch = import_onnx2torch()
    try:
        network = onnx2torch.convert(model)
    except Exception as exc:  # noqa: BLE001 - a converter's failure is the user's graph's
        node = _failing_node(exc)
        if node is not None:
            raise InputError(f"{path}: onnx2torch {version} cannot convert {node} "
                             f"({_reason(exc)}); {_FIX}") from None
        raise InputError(f"{path}: onnx2torch {version} cannot convert the graph "
                         f"({_reason(exc)}); {_FIX}") from None
    if not isinstance(network, nn.Module):  # pragma: no cover - onnx2torch returns a module
        raise InputError(f"{path}: onnx2torch returned a {type(network).__name__}, not a module")
    return network.eval()
