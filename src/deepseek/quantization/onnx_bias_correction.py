"""Bias correction for QDQ ONNX models: undo the mean output shift that rounding the weights causes.

Rounding a layer's weights to int8 moves its output by ``(W_q - W) · x``. Averaged over the data that is
``(W_q - W) · E[x]`` per output channel — a systematic shift, not noise — and layers whose output a
BatchNorm divided by a small spread (MobileNetV2's depthwise convs) carry it into every later layer.
Subtracting it from the bias removes it (Nagel et al. 2019, "Data-Free Quantization", §4.2). ``E[x]``
is measured on the calibration data in the FP32 model, and ``W_q`` is read from the quantized model
itself, so the correction matches what ONNX Runtime actually runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def correct_biases(qdq_path: str | Path, fp32_path: str | Path, feeds: list[dict[str, np.ndarray]], *,
                   activations: bool = False) -> int:
    """Rewrite the int32 biases of every Conv/Gemm in ``qdq_path`` (in place) so each layer's mean output
    over ``feeds`` matches the FP32 model at ``fp32_path``; returns how many layers were corrected.

    ``activations``: the shift also counts the layer's own input rounding and clipping,
    ``W_q · E[dq(q(x))] - W · E[x]``, not only its weights' ``(W_q - W) · E[x]``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(qdq_path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    fp32_inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(fp32_path)).graph.initializer}

    layers = []  # (node, float input tensor name, weight DQ, bias DQ)
    grids: dict[str, tuple[float, int, int]] = {}  # input tensor -> (scale, zero point, ONNX integer type)
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3:
            continue
        dq_x, dq_w, dq_b = (producer.get(name) for name in node.input[:3])
        if not all(n is not None and n.op_type == "DequantizeLinear" for n in (dq_x, dq_w, dq_b)):
            continue
        q_x = producer.get(dq_x.input[0])
        if q_x is None or q_x.op_type != "QuantizeLinear" or dq_w.input[0] not in inits or dq_b.input[0] not in inits:
            continue
        layers.append((node, q_x.input[0], dq_w, dq_b))
        grids[q_x.input[0]] = (float(numpy_helper.to_array(inits[q_x.input[1]])),
                               int(numpy_helper.to_array(inits[q_x.input[2]])) if len(q_x.input) > 2 else 0,
                               inits[q_x.input[2]].data_type if len(q_x.input) > 2 else onnx.TensorProto.UINT8)
    if not layers:
        return 0

    names = sorted({x for _, x, _, _ in layers})
    means = _input_means(fp32_path, names, feeds)
    rounded = _input_means(fp32_path, names, feeds, grids) if activations else {}
    for node, x_name, dq_w, dq_b in layers:
        w_q = _dequantize(dq_w, inits)
        float_name = float_source(node.input[1], dq_w)
        w = fp32_inits.get(float_name)
        if w is None or w.shape != w_q.shape:
            continue
        shift = _output_shift(node, w_q, rounded[x_name]) - _output_shift(node, w, means[x_name]) if activations \
            else _output_shift(node, w_q - w, means[x_name])
        b_int = numpy_helper.to_array(inits[dq_b.input[0]])
        b_scale = numpy_helper.to_array(inits[dq_b.input[1]]).astype(np.float64)
        b = b_int.astype(np.float64) * b_scale - shift
        corrected = np.clip(np.round(b / b_scale), np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        inits[dq_b.input[0]].CopyFrom(numpy_helper.from_array(corrected, dq_b.input[0]))
    onnx.save(model, str(qdq_path))
    return len(layers)


def float_source(dq_output: str, dq_w: Any) -> str:
    """The FP32 weight's initializer name: ORT's quantizer names the int8 copy ``<name>_quantized``."""
    name = dq_w.input[0]
    return name[: -len("_quantized")] if name.endswith("_quantized") else dq_output


def _dequantize(dq: Any, inits: dict[str, Any]) -> np.ndarray:
    from onnx import numpy_helper

    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    zero = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 and dq.input[2] else 0.0
    return (q - along_axis(zero, q.ndim, dq)) * along_axis(scale, q.ndim, dq)


def along_axis(values: Any, ndim: int, dq: Any) -> Any:
    """A DequantizeLinear's per-channel ``values`` (an array or tensor) shaped to broadcast along its ``axis``
    (default 1) of an ``ndim``-D tensor; a scalar as it is."""
    if np.ndim(values) == 0:
        return values
    shape = [1] * ndim
    shape[next((a.i for a in dq.attribute if a.name == "axis"), 1)] = -1
    return values.reshape(shape)


def _output_shift(node: Any, delta: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Mean change of each output channel, ``(W_q - W) · E[x]`` (zero padding at borders ignored)."""
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return delta @ mean if trans_b else mean @ delta
    out_channels, per_group = delta.shape[:2]
    groups = mean.shape[0] // per_group
    spatial = delta.reshape(out_channels, per_group, -1).sum(-1)  # (O, I/groups)
    group_of = np.arange(out_channels) // (out_channels // groups)
    return (spatial * mean.reshape(groups, per_group)[group_of]).sum(1)


def capture_tensors(fp32_path: str | Path, names: list[str], feeds: list[dict[str, np.ndarray]],
                    reduce: Any = None) -> dict[str, list[np.ndarray]]:
    """The named intermediate tensors of the model on each feed (``reduce(name, tensor)`` applied, if given)."""
    import onnx
    import onnxruntime as ort

    from ..runtime.backends import session_options

    model = onnx.load(str(fp32_path))
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    session = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    captured: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feed in feeds:
        outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
        for n in names:
            captured[n].append(outs[n] if reduce is None else reduce(n, outs[n]))
    return captured


def _input_means(fp32_path: str | Path, names: list[str], feeds: list[dict[str, np.ndarray]],
                 grids: dict[str, tuple[float, int, int]] | None = None) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) mean of each named tensor of the FP32 model over ``feeds``; with ``grids``, of the
    tensor rounded to its integer grid and back (``scale, zero point, ONNX type`` per name)."""
    from onnx import TensorProto

    def channel_sum(name: str, t: np.ndarray) -> np.ndarray:
        t = t.astype(np.float64)
        if grids is not None:
            scale, zero, kind = grids[name]
            low, high = (0, 255) if kind == TensorProto.UINT8 else (-128, 127)
            t = (np.clip(np.round(t / scale) + zero, low, high) - zero) * scale
        return t.sum(axis=tuple(i for i in range(t.ndim) if i != 1)) / (t.size / t.shape[1]) * t.shape[0]

    captured = capture_tensors(fp32_path, names, feeds, reduce=channel_sum)
    count = sum(next(iter(f.values())).shape[0] for f in feeds)
    return {n: np.sum(parts, axis=0) / count for n, parts in captured.items()}
