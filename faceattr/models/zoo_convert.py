"""Turning the three shipped face networks into float32 ONNX graphs that onnx2torch converts.

Each function takes the original file as fetched (verified) and returns an ``onnx.ModelProto``
with one image input of symbolic batch, float32 initialisers only, and an opset onnx2torch 1.5.15
has converters for; :mod:`faceattr.models.zoo` writes it to the cache once and loads it through
:func:`faceattr.models.files.load_model_file` like any researcher's ONNX file.

- SFace (OpenCV Zoo ``face_recognition_sface_2021dec_int8bq.onnx``): opset 21, weights stored as
  int8 with ``DequantizeLinear`` (block-wise scales, block 64; ONNX opset 21), each followed by a
  constant ``Reshape``; the graph lists its dequantised weights as (stale) graph inputs as
  well, and ends with a ``Constant`` dropout ratio. :func:`prepare_sface` dequantises every
  weight to a float initialiser (:func:`dequantize_linear`), folds the constant ``Reshape`` and
  ``Constant`` nodes, drops the stale inputs and relabels the opset (:func:`relabel_opset`).
- MobileFaceNet-512 (Faceplugin ``fr_feature.onnx``): opset 9, exported with a batch of 1 and
  a final ``Reshape`` to ``[1, -1]``; :func:`prepare_fixed_batch_onnx` gives it a symbolic batch.
- MobileFaceNet-192 (sirius-ai MobileFaceNet_TF, ``MobileFaceNet.tflite``): a TFLite flatbuffer
  with a batch fixed at 2; :func:`prepare_tflite` converts it with tflite2onnx 0.4.1
  (https://github.com/zhenhuaw-me/tflite2onnx, Apache-2.0), which also moves the input to NCHW,
  then makes the batch symbolic (:func:`unfix_batch`).

References
----------
ONNX operator specification, ``DequantizeLinear`` (opset 21: ``block_size``),
https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper

from faceattr.models.onnx_import import BATCH_DIM_PARAM, make_batch_dynamic

__all__ = ["RELABEL_SAFE_OPS", "dequantize_linear", "fold_constants", "prepare_fixed_batch_onnx",
           "prepare_sface", "prepare_tflite", "relabel_opset", "unfix_batch"]

ONNX2TORCH_OPSET = 17
"""The default-domain opset the prepared graphs declare (onnx2torch 1.5.15 converts it)."""

RELABEL_SAFE_OPS: frozenset[str] = frozenset({
    "Add", "BatchNormalization", "Conv", "Dropout", "Flatten", "Gemm", "Mul", "PRelu",
    "Reshape", "Sub"})
"""Ops whose semantics are the same from opset 17 to opset 21 (later versions only widened the
accepted element types: Flatten-21, Reshape-21), so relabelling such a graph's opset to 17
changes nothing it computes."""


def dequantize_linear(quantized: NDArray[Any], scale: NDArray[np.float32],
                      zero_point: NDArray[Any] | None, *, axis: int = 1,
                      block_size: int = 0) -> NDArray[np.float32]:
    """ONNX ``DequantizeLinear``: ``(x - zero_point) * scale`` in float32.

    Per-tensor (scalar ``scale``), per-axis (1-D ``scale`` along ``axis``) or, with
    ``block_size > 0`` (opset 21), block-wise: ``scale`` and ``zero_point`` have the input's
    shape except along ``axis``, where each element covers ``block_size`` consecutive inputs
    (the last block may be shorter).
    """
    x = quantized.astype(np.float32)
    zp = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point.astype(
        np.float32)
    scale = scale.astype(np.float32)
    axis = axis % x.ndim
    if block_size > 0:
        length = x.shape[axis]
        if scale.ndim != x.ndim or scale.shape[axis] != -(-length // block_size):
            raise ValueError(f"block-wise scale of shape {scale.shape} does not fit input "
                             f"{x.shape} with block_size {block_size} on axis {axis}")
        take = np.arange(length) // block_size
        scale, zp = np.take(scale, take, axis=axis), np.take(zp, take, axis=axis)
    elif scale.ndim == 1 and scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((x - zp) * scale).astype(np.float32)


def _constant_value(node: onnx.NodeProto) -> NDArray[Any]:
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
    raise ValueError(f"Constant node {node.name!r} has no tensor 'value'")


def fold_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold ``Constant``, all-constant ``DequantizeLinear`` and ``Reshape`` nodes into initialisers.

    Graph inputs that are initialisers, folded values, or unused (the stale weight inputs of
    SFace's export) are dropped, as are stale ``value_info`` shapes. Returns a copy and the
    number of nodes folded.
    """
    folded_model = onnx.ModelProto()
    folded_model.CopyFrom(model)
    graph = folded_model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        constant_inputs = all(name in constants for name in inputs)
        if node.op_type == "Constant":
            constants[node.output[0]] = _constant_value(node)
        elif node.op_type == "DequantizeLinear" and constant_inputs:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            zero_point = constants[inputs[2]] if len(inputs) > 2 else None
            constants[node.output[0]] = dequantize_linear(
                constants[inputs[0]], constants[inputs[1]], zero_point,
                axis=int(attrs.get("axis", 1)), block_size=int(attrs.get("block_size", 0)))
        elif node.op_type == "Reshape" and constant_inputs:
            shape = [int(d) for d in constants[inputs[1]]]
            source = constants[inputs[0]]
            shape = [source.shape[i] if d == 0 else d for i, d in enumerate(shape)]
            constants[node.output[0]] = source.reshape(shape)
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    n_folded = len(graph.node) - len(kept)
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name)
                             for name, value in constants.items() if name in used)
    inputs_kept = [v for v in graph.input if v.name in used and v.name not in constants]
    del graph.input[:]
    graph.input.extend(inputs_kept)
    del graph.value_info[:]
    return folded_model, n_folded


def relabel_opset(model: onnx.ModelProto, version: int = ONNX2TORCH_OPSET) -> onnx.ModelProto:
    """Declare default-domain opset ``version`` for a graph made only of :data:`RELABEL_SAFE_OPS`.

    Raises
    ------
    ValueError
        A node's op is not in :data:`RELABEL_SAFE_OPS` (its meaning could differ), or a node is
        in another domain.
    """
    unsafe = sorted({n.op_type for n in model.graph.node
                     if n.op_type not in RELABEL_SAFE_OPS or n.domain not in ("", "ai.onnx")})
    if unsafe:
        raise ValueError(f"cannot relabel the opset: ops {unsafe} may differ between opsets")
    relabelled = onnx.ModelProto()
    relabelled.CopyFrom(model)
    for entry in relabelled.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = version
    return relabelled


def prepare_sface(path: Path) -> onnx.ModelProto:
    """OpenCV Zoo's int8 block-quantised SFace as a float32 opset-17 graph of symbolic batch."""
    model, n_folded = fold_constants(onnx.load(str(path)))
    if n_folded == 0 or any(n.op_type == "DequantizeLinear" for n in model.graph.node):
        raise ValueError(f"{path}: not the block-quantised SFace graph (nothing to dequantise)")
    model, _ = make_batch_dynamic(relabel_opset(model))
    onnx.checker.check_model(model)
    return model


def prepare_fixed_batch_onnx(path: Path) -> onnx.ModelProto:
    """An ONNX graph exported with a batch of 1 (e.g. ``Reshape`` to ``[1, -1]``), batch made
    symbolic by :func:`faceattr.models.onnx_import.make_batch_dynamic`."""
    model, n_rewritten = make_batch_dynamic(onnx.load(str(path)))
    if n_rewritten < 0:
        raise ValueError(f"{path}: the graph's batch is not fixed at 1")
    onnx.checker.check_model(model)
    return model


def unfix_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """Give a graph whose batch is fixed at ``batch`` a symbolic batch dimension.

    The single input's and the outputs' first dimensions become symbolic, stale ``value_info``
    is dropped, and every ``Reshape`` whose constant target shape starts with ``batch`` gets a
    target starting with 0 (copy the input's batch; ONNX ``Reshape`` without ``allowzero``).

    Raises
    ------
    ValueError
        The input's first dimension is not ``batch``, or no ``Reshape`` needed rewriting while
        an output is rank 2 (the graph flattens the batch another way).
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or inputs[0].type.tensor_type.shape.dim[0].dim_value != batch:
        raise ValueError(f"expected one input of batch {batch}")
    for value in [inputs[0], *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM_PARAM
    del graph.value_info[:]
    by_name = {t.name: t for t in graph.initializer}
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in by_name:
            continue
        target = numpy_helper.to_array(by_name[node.input[1]])
        if target.ndim == 1 and target.size >= 2 and int(target[0]) == batch and \
                node.input[0] not in initializers:
            new_target = target.astype(np.int64, copy=True)
            new_target[0] = 0
            by_name[node.input[1]].CopyFrom(numpy_helper.from_array(new_target, node.input[1]))
            rewritten += 1
    if rewritten == 0:
        raise ValueError(f"no Reshape to a batch of {batch} found to rewrite")
    return fixed


def prepare_tflite(path: Path, *, batch: int = 2) -> onnx.ModelProto:
    """A float32 TFLite face network (fixed batch ``batch``) as an NCHW ONNX graph of symbolic
    batch, with tflite2onnx 0.4.1 (``tflite2onnx.convert(tflite_path, onnx_path)``)."""
    tflite2onnx = importlib.import_module("tflite2onnx")
    with tempfile.TemporaryDirectory(prefix="faceattr-tflite-") as tmp:
        out = Path(tmp) / "model.onnx"
        tflite2onnx.convert(str(path), str(out))
        model = onnx.load(str(out))
    model = unfix_batch(model, batch)
    onnx.checker.check_model(model)
    return model
