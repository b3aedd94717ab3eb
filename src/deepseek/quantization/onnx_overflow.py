"""Int16 saturation of U8S8 kernels on x86 CPUs without VNNI: measure it per layer, give 7-bit weights where it bites.

On AVX2 (and AVX-512 without VNNI) ONNX Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW,
which adds each two neighbouring products (two adjacent input channels at one kernel position) into a
*saturating* int16: exact up to 32,767, but two products of 255 × 127 reach 64,770. A layer whose real inputs
drive such pairs past the limit computes wrong outputs — the reason ONNX Runtime's own guide suggests 7-bit
weights (``reduce_range``) or U8U8 on these CPUs, and NNCF gives its first layer 7-bit weights. Halving the
weight range makes saturation impossible (2 × 255 × 64 = 32,640) but costs one bit of precision, and U8U8 is
slower than FP32 on some models, so here the damage is measured instead: each Conv/Gemm's pair sums are
replayed in integers on the calibration inputs, and a layer gets 7-bit weights only where saturation costs
its output more than the lost bit would. Depthwise convolutions are left alone: ONNX Runtime's depthwise kernels widen to
int16 before multiplying.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

INT16_MAX = 32767


@dataclasses.dataclass(frozen=True)
class LayerOverflow:
    """One layer's int16 pair-sum saturation on the calibration inputs, and what 7-bit weights would cost instead.

    Errors are RMS output changes relative to the RMS of the layer's output with float weights, on the same
    quantized inputs: ``saturation_error`` what saturation adds, ``int8_error`` what rounding the weights to 8 bits
    costs, ``int7_error`` what 7 bits would cost (and nothing can saturate then)."""

    node: str
    saturated_pairs: float  # fraction of the two-product sums outside int16
    saturation_error: float
    int8_error: float
    int7_error: float
    fixed: bool  # the weights were re-quantized to 7 bits

    @property
    def needs_fix(self) -> bool:
        """7-bit weights lose less than saturation plus 8-bit rounding do (independent errors add in quadrature)."""
        return float(np.hypot(self.saturation_error, self.int8_error)) > self.int7_error


def _qdq_layers(model: Any) -> list[tuple[Any, Any, Any, Any, Any]]:
    """(node, activation QuantizeLinear, weight DequantizeLinear, bias DequantizeLinear or None, weight init name)
    for every Conv/Gemm/MatMul whose input and weights are QDQ-quantized with uint8 activations."""
    from onnx import TensorProto

    inits = {t.name: t for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    layers = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        dq_x, dq_w = producer.get(node.input[0]), producer.get(node.input[1])
        if dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear" or dq_w.op_type != "DequantizeLinear":
            continue
        q_x = producer.get(dq_x.input[0])
        w_name = dq_w.input[0]
        if q_x is None or q_x.op_type != "QuantizeLinear" or w_name not in inits:
            continue
        if inits[w_name].data_type != TensorProto.INT8:  # U8U8 layers widen before multiplying
            continue
        zp_x = inits.get(q_x.input[2]) if len(q_x.input) > 2 else None
        if zp_x is None or zp_x.data_type != TensorProto.UINT8:
            continue
        dq_b = producer.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        layers.append((node, q_x, dq_w, dq_b if dq_b is not None and dq_b.op_type == "DequantizeLinear" else None,
                       w_name))
    return layers


def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else a.i
    return default


def _columns(node: Any, a: torch.Tensor, w: torch.Tensor, zero: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The layer as a matrix product: input rows (R, K) of raw uint8 codes and weights (O, K), K ordered as the
    kernels pair it (adjacent input channels at one kernel position) and padded to even. None: not a
    VPMADDUBSW layer."""
    if node.op_type == "Conv":
        if _attr(node, "group", 1) != 1:
            return None  # depthwise / grouped: separate kernels that widen first
        if w.dim() != 4:
            return None  # 1-D and 3-D convolutions are not replayed (not measured: left at 8 bits)
        kh, kw = w.shape[2:]
        pads = _attr(node, "pads", [0, 0, 0, 0])
        # ONNX Runtime pads uint8 inputs with their zero point
        padded = torch.nn.functional.pad(a, (pads[1], pads[3], pads[0], pads[2]), value=float(zero))
        cols = torch.nn.functional.unfold(padded, (kh, kw), dilation=_attr(node, "dilations", [1, 1]),
                                          stride=_attr(node, "strides", [1, 1]))  # (N, C*kh*kw, L), channel-major
        n, _, length = cols.shape
        cols = cols.reshape(n, a.shape[1], kh * kw, length).permute(0, 3, 2, 1).reshape(n * length, -1)
        weights = w.reshape(w.shape[0], w.shape[1], kh * kw).permute(0, 2, 1).reshape(w.shape[0], -1)
    else:
        cols = a.reshape(-1, a.shape[-1])
        trans_b = node.op_type == "Gemm" and _attr(node, "transB", 0)
        weights = w if trans_b else w.T
    channels = a.shape[1] if node.op_type == "Conv" else cols.shape[-1]
    if channels % 2:  # the kernels pad the channel dimension; a zero weight adds nothing
        positions = cols.shape[1] // channels
        cols = torch.nn.functional.pad(cols.reshape(cols.shape[0], positions, channels), (0, 1)).reshape(cols.shape[0], -1)
        weights = torch.nn.functional.pad(weights.reshape(weights.shape[0], positions, channels), (0, 1)
                                          ).reshape(weights.shape[0], -1)
    return cols, weights


def _layer_errors(cols: torch.Tensor, zero: int, codes: torch.Tensor, ideal: torch.Tensor
                  ) -> tuple[float, float, float, float]:
    """(saturated pair fraction, saturation error, 8-bit error, 7-bit error) of one layer; ``codes`` its int8
    weights, ``ideal`` its float weights in units of the 8-bit scale, both (O, K)."""
    centred = cols - zero
    reference = centred @ ideal.T
    exact = centred @ codes.T
    seven = centred @ (2 * torch.clamp(torch.round(ideal / 2), -64, 64)).T
    saturation = torch.zeros_like(exact)
    saturated = 0
    step = max(1, 4_000_000 // max(1, codes.numel() // 2))
    pair_w = codes.reshape(codes.shape[0], -1, 2)
    for i in range(0, cols.shape[0], step):
        pair_a = cols[i: i + step].reshape(-1, 1, codes.shape[1] // 2, 2)
        pairs = (pair_a * pair_w[None]).sum(-1)  # (r, O, K/2): the int16 sums VPMADDUBSW forms, exact here
        clipped = torch.clamp(pairs, -INT16_MAX - 1, INT16_MAX)
        saturation[i: i + step] = (clipped - pairs).sum(-1)
        saturated += int((clipped != pairs).sum())
    scale = float(torch.sqrt((reference ** 2).mean()).clamp_min(1e-12))

    def rms(t: torch.Tensor) -> float:
        return float(torch.sqrt((t ** 2).mean())) / scale

    return saturated / (exact.numel() * codes.shape[1] / 2), rms(saturation), rms(exact - reference), rms(seven - reference)


def measure_overflow(qdq: Any, fp32_path: str | Path, feeds: list[dict[str, np.ndarray]], *, rows: int = 1024,
                     seed: int = 0) -> list[LayerOverflow]:
    """How much int16 pair-sum saturation moves each U8S8 Conv/Gemm/MatMul of the QDQ model ``qdq`` (an
    ``onnx.ModelProto``) on ``feeds`` (on ``rows`` sampled output positions), and what 8 and 7-bit weights cost;
    its layer inputs come from the FP32 model at ``fp32_path``, quantized as ``qdq`` does."""
    import onnx
    from onnx import numpy_helper

    from .onnx_bias_correction import along_axis, capture_tensors, float_source

    layers = _qdq_layers(qdq)
    if not layers:
        return []
    inits = {t.name: t for t in qdq.graph.initializer}
    fp32_inits = {t.name: t for t in onnx.load(str(fp32_path)).graph.initializer}
    captured = capture_tensors(fp32_path, sorted({q_x.input[0] for _, q_x, *_ in layers}), feeds)
    rng = np.random.default_rng(seed)
    report = []
    for node, q_x, dq_w, _dq_b, w_name in layers:
        source = fp32_inits.get(float_source(node.input[1], dq_w))
        if source is None:
            continue
        scale = float(numpy_helper.to_array(inits[q_x.input[1]]))
        zero = int(numpy_helper.to_array(inits[q_x.input[2]]))
        x = torch.from_numpy(np.concatenate(captured[q_x.input[0]]).astype(np.float64))
        a = torch.clamp(torch.round(x / scale) + zero, 0, 255)
        codes = torch.from_numpy(numpy_helper.to_array(inits[w_name]).astype(np.float64))
        w_scale = torch.from_numpy(numpy_helper.to_array(inits[dq_w.input[1]]).astype(np.float64))
        ideal = torch.from_numpy(numpy_helper.to_array(source).astype(np.float64))
        ideal = ideal / along_axis(w_scale, ideal.ndim, dq_w)
        got = _columns(node, a, codes, zero)
        if got is None:
            continue
        cols, weights = got
        _, ideal_cols = _columns(node, a[:1], ideal, zero)  # the same arrangement for the float weights
        # enough output positions for a stable fraction; fewer on the largest layers (O x K above ~400k), which
        # would otherwise dominate the build time
        take = int(np.clip(2**28 // max(1, weights.numel()), 128, rows))
        if cols.shape[0] > take:
            cols = cols[torch.from_numpy(rng.choice(cols.shape[0], take, replace=False))]
        # float32 holds every pair sum (|x| <= 2 x 255 x 128 < 2**24) exactly; the output sums' rounding is far
        # below the errors compared
        report.append(LayerOverflow(node.name, *_layer_errors(cols.float(), zero, weights.float(), ideal_cols.float()),
                                    False))
    return report


def fix_overflow(qdq_path: str | Path, fp32_path: str | Path, feeds: list[dict[str, np.ndarray]]
                 ) -> list[LayerOverflow]:
    """Re-quantize to 7 bits (in place) the int8 weights of every layer of ``qdq_path`` where that loses less than
    int16 saturation plus 8-bit rounding do on ``feeds`` (:attr:`LayerOverflow.needs_fix`); returns every layer's
    measurement."""
    import onnx
    from onnx import numpy_helper

    from .onnx_bias_correction import along_axis, float_source

    model = onnx.load(str(qdq_path))
    report = measure_overflow(model, fp32_path, feeds)
    bad = {r.node for r in report if r.needs_fix}
    if not bad:
        return report
    inits = {t.name: t for t in model.graph.initializer}
    fp32_inits = {t.name: t for t in onnx.load(str(fp32_path)).graph.initializer}
    for node, _q_x, dq_w, dq_b, w_name in _qdq_layers(model):
        if node.name not in bad:
            continue
        source = fp32_inits.get(float_source(node.input[1], dq_w))
        scale_init = inits[dq_w.input[1]]
        scale = numpy_helper.to_array(scale_init).astype(np.float64)
        if source is None:
            continue
        w = numpy_helper.to_array(source).astype(np.float64)
        new_scale = scale * 2.0  # 127 -> 63.5 steps: the int8 codes stay within [-64, 64]
        codes = np.clip(np.round(w / along_axis(new_scale, w.ndim, dq_w)), -64, 64).astype(np.int8)
        inits[w_name].CopyFrom(numpy_helper.from_array(codes, w_name))
        scale_init.CopyFrom(numpy_helper.from_array(new_scale.astype(np.float32), scale_init.name))
        if dq_b is not None and dq_b.input[0] in inits:  # the int32 bias is quantized at x_scale * w_scale
            b_scale_init = inits[dq_b.input[1]]
            b_scale = numpy_helper.to_array(b_scale_init).astype(np.float64)
            bias = numpy_helper.to_array(inits[dq_b.input[0]]).astype(np.float64) * b_scale
            new_b_scale = b_scale * 2.0
            inits[dq_b.input[0]].CopyFrom(numpy_helper.from_array(
                np.round(bias / new_b_scale).astype(np.int32), dq_b.input[0]))
            b_scale_init.CopyFrom(numpy_helper.from_array(new_b_scale.astype(np.float32), b_scale_init.name))
    onnx.save(model, str(qdq_path))
    return [dataclasses.replace(r, fixed=r.node in bad) for r in report]
