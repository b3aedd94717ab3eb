"""Static INT8 of an ONNX file without its PyTorch source (a model exported from Paddle, TensorFlow, another team).

The same steps as :func:`.onnx_static.quantize_static_onnx` takes after its export: ONNX Runtime's QDQ
quantization calibrated on real inputs, in the int8 layout this CPU calls for (:mod:`.precision`), outputs left in
float, the int16 saturation of U8S8 kernels measured and fixed layer by layer on AVX2 (:mod:`.onnx_overflow`),
optional bias correction, and named activations left in float. The graph is first brought to opset 13 (per-channel
scales need it) and through ONNX Runtime's own pre-processing (constant folding, Conv+BatchNorm fusion).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core.atomic import atomic_path, check_output
from .._core.checks import check_choice, check_number
from .._core.errors import invalid

MIN_OPSET = 13  # DequantizeLinear's per-channel ``axis``


@dataclasses.dataclass
class GraphQuantResult:
    """What :func:`quantize_onnx_graph` wrote: the file, its int8 layout, the activations left in float, the layers
    given 7-bit weights against int16 saturation, and op types kept float (non-finite or mask values)."""

    path: Path
    int8_format: str
    float_activations: list[str]
    overflow: list[dict[str, Any]]
    float_op_types: list[str]
    size_bytes: int


def feeds_of(model: str | Path, calibration: Any, *, argument: str = "calibration",
             batch: int | None = None) -> list[dict[str, np.ndarray]]:
    """``calibration`` (an array of inputs, or a list of arrays) as ONNX Runtime feeds of ``model``'s single input, in
    batches of ``batch`` rows (the model's fixed batch if it has one, else 8)."""
    from .._core.arrays import check_array, pad_rows

    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        raise invalid("model", str(model), f"an ONNX model with one input (it has {len(inputs)}: "
                                           f"{[name for name, _ in inputs]})")
    name, dims = inputs[0]
    arrays = calibration if isinstance(calibration, (list, tuple)) else [calibration]
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        raise invalid(argument, type(calibration).__name__, "an array of real inputs (N, ...) or a list of them")
    x = np.concatenate([check_array(a, argument=argument) for a in arrays])
    if x.ndim != len(dims) or any(isinstance(d, int) and d != s for d, s in zip(dims[1:], x.shape[1:])):
        raise invalid(argument, f"inputs of shape {list(x.shape)}", f"inputs the model takes: {dims}")
    fixed = dims[0] if isinstance(dims[0], int) else None
    step = fixed or batch or 8
    feeds = []
    for i in range(0, len(x), step):
        feeds.append({name: pad_rows(x[i:i + step], fixed) if fixed else x[i:i + step]})
    return feeds


def _graph_inputs(model: str | Path) -> list[tuple[str, list[int | str]]]:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    return [(i.name, [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                      for d in i.type.tensor_type.shape.dim]) for i in graph.input if i.name not in initializers]


def prepare_graph(source: str | Path, output: str | Path) -> Path:
    """``source`` at opset >= 13 and through ONNX Runtime's quantization pre-processing, written to ``output``."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(source))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    staged = Path(output).with_suffix(".opset.onnx")
    if opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # the converter raises bare RuntimeErrors on ops it cannot move
            raise invalid("model", str(source), f"an ONNX graph that converts to opset {MIN_OPSET} (per-channel "
                                                f"INT8 needs it; it is at {opset}: {str(exc)[:160]})") from None
    onnx.save(model, str(staged))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                quant_pre_process(str(staged), str(output))
            except Exception:  # symbolic shape inference gives up on graphs with data-dependent shapes
                quant_pre_process(str(staged), str(output), skip_symbolic_shape=True)
    finally:
        staged.unlink(missing_ok=True)
    return Path(output)


def quantize_onnx_graph(source: str | Path, calibration: Any, output: str | Path, *, method: str = "percentile",
                        percentile: float = 99.99, per_channel: bool = True, int8_format: str = "auto",
                        bias_correction: bool | str = False, float_activations: Sequence[str] = ()
                        ) -> GraphQuantResult:
    """Quantize the ONNX file ``source`` to static INT8 (QDQ) calibrated on ``calibration`` (an array of its
    inputs), and write it to ``output``. ``int8_format``: :data:`.precision.INT8_FORMATS` or ``"auto"`` (this CPU's);
    ``float_activations``: activation tensors (as named in the quantized graph) to leave in float."""
    import onnx

    from .onnx_bias_correction import correct_biases
    from .onnx_qdq import leave_named_float
    from .onnx_static import METHODS, _names, quantize_qdq
    from .precision import resolve_int8_format

    if not isinstance(source, (str, Path)) or not Path(source).is_file():
        raise invalid("source", str(source), "an existing .onnx file")
    if not isinstance(output, (str, Path)) or Path(output).suffix.lower() != ".onnx":
        raise invalid("output", output, "a file name ending in .onnx")
    check_output(output, argument="output", inputs=(source,))
    check_choice(method, "method", METHODS, expected=f"one of {METHODS}")
    check_number(percentile, "percentile", above=50, maximum=100, expected="a number in (50, 100]")
    if not (isinstance(bias_correction, bool) or bias_correction == "activations"):
        raise invalid("bias_correction", bias_correction, "True, False or 'activations'")
    fmt = resolve_int8_format(int8_format)
    float_activations = _names("float_activations", float_activations)
    feeds = feeds_of(source, calibration)
    work = Path(tempfile.mkdtemp(prefix="deepseek-graph-quant-"))
    try:
        fp32 = prepare_graph(source, work / "fp32.onnx")
        quantized = work / "int8.onnx"
        float_ops, overflow = quantize_qdq(fp32, quantized, feeds, fmt, method, percentile, per_channel,
                                           source=source)
        if bias_correction:
            correct_biases(quantized, fp32, feeds, activations=bias_correction == "activations")
        model = onnx.load(str(quantized))
        if float_activations:
            model = leave_named_float(model, float_activations, onnx.load(str(fp32)), source="this graph")
        with atomic_path(output) as tmp:
            onnx.save(model, str(tmp))
            size = tmp.stat().st_size
        return GraphQuantResult(Path(output), fmt.name, list(float_activations),
                                [dataclasses.asdict(r) for r in overflow if r.saturated_pairs > 0], float_ops, size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rank_graph_activations(source: str | Path, calibration: Any, *, int8_format: str = "auto",
                           method: str = "percentile") -> list[str]:
    """The quantized activations of ``source``'s INT8 graph, most harmful to quantize first: each left in float
    alone, ranked by the SQNR of the model's first output against FP32 on the first 8 calibration inputs (one
    ONNX Runtime pass per activation: a detector's 300 take minutes even so)."""
    import onnx

    from .onnx_static import _activation_ranking, _first_samples, _run

    work = Path(tempfile.mkdtemp(prefix="deepseek-graph-rank-"))
    try:
        quantized = quantize_onnx_graph(source, calibration, work / "int8.onnx", method=method,
                                        int8_format=int8_format).path
        fp32 = prepare_graph(source, work / "fp32.onnx")
        feeds = _first_samples(feeds_of(source, calibration), 8)
        ranking = _activation_ranking(onnx.load(str(quantized)), onnx.load(str(fp32)), feeds, _run(fp32, feeds), {})
        return [r.tensor for r in ranking]
    finally:
        shutil.rmtree(work, ignore_errors=True)
