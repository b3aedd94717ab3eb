"""FP16 ONNX for GPUs "where safe": every node runs in float16 except those whose outputs, measured on real
sample inputs, come near float16's range (65504), and those whose weights are mostly below its smallest normal
number (2^-14) — those stay float32. Inputs and outputs stay float32, so callers feed the same arrays.
Conversion by onnxconverter-common; the range checks are ours.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .._core.errors import require

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0 ** -14


@dataclasses.dataclass(frozen=True)
class Fp16Result:
    path: Path
    fp16_nodes: int
    kept_fp32: list[str]  # nodes left in float32: outputs near float16's range, tiny weights, or reading a graph output
    largest_activation: float  # max |x| over every intermediate on the sample inputs


def convert_fp16(source: str | Path, output: str | Path, feeds: list[dict[str, np.ndarray]], *,
                 headroom: float = 0.25) -> Fp16Result:
    """Write ``source`` (an FP32 ONNX file) as float16 to ``output``; nodes whose outputs exceed
    ``headroom * 65504`` in magnitude on ``feeds``, or whose weights are mostly subnormal in float16, stay float32."""
    import onnx

    float16 = require("onnxconverter_common.float16", "FP16 conversion", "onnxconverter-common==1.16.0")
    model = onnx.load(str(source))
    peaks = _activation_peaks(model, feeds)
    names = [n.name for n in model.graph.node]
    if len(set(names)) != len(names) or "" in names:  # the block list works by node name
        for i, node in enumerate(model.graph.node):
            node.name = f"{node.name or 'node'}_{i}"
    outputs = {o.name for o in model.graph.output}
    unsafe = {node.name for node in model.graph.node
              if any(peaks.get(out, 0.0) > headroom * FP16_MAX for out in node.output)}
    # weights mostly below float16's smallest normal number (2^-14) would lose their precision
    tiny = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and _mostly_subnormal(i)}
    unsafe |= {node.name for node in model.graph.node if tiny & set(node.input)}
    # nodes reading a graph output (kept float32 for the caller) stay float32: the converter mistypes them
    unsafe |= {node.name for node in model.graph.node if outputs & set(node.input)}
    original = {i.name: _copy(i) for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=sorted(unsafe))
    _restore_fp32_weights(converted, original)
    onnx.save(converted, str(output))
    fp16 = sum(1 for n in model.graph.node if n.name not in unsafe)
    return Fp16Result(Path(output), fp16, sorted(unsafe), max(peaks.values(), default=0.0))


def _restore_fp32_weights(converted: Any, original: dict[str, Any]) -> None:
    """The converter stores every weight as float16 and casts back for float32 nodes, which rounds (and clamps)
    exactly the weights those nodes are kept for: put the original float32 data back where only such casts read it."""
    import onnx

    readers: dict[str, list[Any]] = {}
    for node in converted.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for init in converted.graph.initializer:
        users = readers.get(init.name, [])
        if init.name in original and users and all(
                u.op_type == "Cast" and onnx.helper.get_attribute_value(u.attribute[0]) == onnx.TensorProto.FLOAT
                for u in users):
            init.CopyFrom(original[init.name])  # the casts become float32 -> float32, which ONNX Runtime removes


def _copy(tensor: Any) -> Any:
    import onnx

    out = onnx.TensorProto()
    out.CopyFrom(tensor)  # the converter rewrites the model's initializers in place
    return out


def _mostly_subnormal(initializer: Any) -> bool:
    from onnx import numpy_helper

    values = np.abs(numpy_helper.to_array(initializer))
    nonzero = values[values > 0]
    return bool(nonzero.size) and float(np.median(nonzero)) < FP16_MIN_NORMAL


def _activation_peaks(model: Any, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Max |x| of every float32 intermediate tensor, running the FP32 model with all of them as outputs."""
    import onnx
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(model)
    produced = {out for node in model.graph.node for out in node.output}  # constants: the converter clamps them
    floats = {v.name for v in list(inferred.graph.value_info) + list(inferred.graph.output)
              if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and v.name in produced}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in sorted(floats - existing):
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor observable
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    peaks: dict[str, float] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(None, feed)):
            if isinstance(value, np.ndarray) and value.size and value.dtype.kind == "f":
                peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(value))))
    return peaks
