"""``deepseek optimize`` for an ONNX file with no PyTorch source: the lowerings and INT8 schemes that apply to a graph.

Candidates: the file in ONNX Runtime (the FP32 baseline); static INT8 of the graph in this CPU's int8 layout or
U8U8, with a calibration method, bias correction and float fallbacks (:mod:`deepseek.quantization.onnx_graph`);
dynamic INT8 where the graph has MatMul/Gemm; and, with the ``openvino`` extra, OpenVINO in float32 and NNCF's INT8
(performance or mixed preset). Pruning, AdaRound and inductor need the PyTorch model and are not searched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .._core.checks import check_choice, check_int
from .._core.config import BaseConfig
from .._core.errors import DeepSeekError, invalid
from .config import FALLBACKS, ONNX_LOWERINGS


@dataclasses.dataclass(frozen=True)
class OnnxRecipe(BaseConfig):
    """How one candidate is built from the ONNX file: the lowering, its calibration (a data source and the rows of
    it used) and its INT8 options; float fallbacks are named tensors, so a replay rebuilds exactly."""

    lowering: str
    calib: str = ""
    samples: int | None = None
    calibration_method: str = "percentile"
    int8_format: str = "auto"
    bias_correction: bool = False
    float_activations: tuple[str, ...] = ()
    preset: str = "performance"

    def __post_init__(self) -> None:
        check_choice(self.lowering, "lowering", ONNX_LOWERINGS, expected=f"one of {ONNX_LOWERINGS}")
        object.__setattr__(self, "float_activations", tuple(self.float_activations))
        if not all(isinstance(t, str) and t for t in self.float_activations):
            raise invalid("float_activations", list(self.float_activations), "tensor names")
        object.__setattr__(self, "samples", check_int(self.samples, "samples", minimum=1, optional=True,
                                                      expected="a count >= 1 or None"))


def available_lowerings(source: Path, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """``wanted`` less what cannot apply here: dynamic INT8 on a graph without MatMul/Gemm (it would change nothing),
    OpenVINO without its extra."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(source), load_external_data=False).graph.node}
    return tuple(lw for lw in wanted if (lw != "ort-int8-dynamic" or ops & {"MatMul", "Gemm"})
                 and (not lw.startswith("openvino") or openvino_installed()))


def openvino_installed() -> bool:
    """Whether the ``openvino`` extra (OpenVINO and NNCF) is importable here."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def onnx_space(lowerings: tuple[str, ...]) -> dict[str, Any]:
    """The ONNX candidates as a deepseek.tune search space (conditional on the lowering)."""
    options: dict[str, Any] = {}
    for lowering in lowerings:
        if lowering == "ort-int8":
            options[lowering] = {"fallbacks": {"type": "choice", "options": list(FALLBACKS)},
                                 "calibration_method": {"type": "choice", "options": ["percentile", "minmax", "entropy"]},
                                 "int8_format": {"type": "choice", "options": ["auto", "u8u8"]},
                                 "bias_correction": {"type": "choice", "options": [False, True]}}
        elif lowering == "openvino-int8":
            options[lowering] = {"preset": {"type": "choice", "options": ["performance", "mixed"]}}
        else:
            options[lowering] = None
    return {"lowering": {"type": "choice", "options": options}}


FIRST_TRIAL = {"lowering": "ort-int8", "lowering=ort-int8/fallbacks": 0,
               "lowering=ort-int8/calibration_method": "percentile", "lowering=ort-int8/int8_format": "auto",
               "lowering=ort-int8/bias_correction": False}


def onnx_recipe_for(params: dict[str, Any], calib: str, samples: int | None, ranking: list[str]) -> OnnxRecipe:
    """The recipe of a candidate (``ranking``: the activations most harmful to quantize, most harmful first)."""
    fields: dict[str, Any] = {"lowering": params["lowering"], "calib": calib, "samples": samples}
    if params["lowering"] == "ort-int8":
        fields.update(calibration_method=params["calibration_method"], int8_format=params["int8_format"],
                      bias_correction=params["bias_correction"],
                      float_activations=tuple(ranking[: params["fallbacks"]]))
    if params["lowering"] == "openvino-int8":
        fields["preset"] = params["preset"]
    return OnnxRecipe(**fields)


def onnx_params_of(recipe: OnnxRecipe) -> dict[str, Any]:
    """The candidate parameters a recipe was built from (the inverse of :func:`onnx_recipe_for`)."""
    params: dict[str, Any] = {"lowering": recipe.lowering}
    if recipe.lowering == "ort-int8":
        params.update(fallbacks=len(recipe.float_activations), calibration_method=recipe.calibration_method,
                      int8_format=recipe.int8_format, bias_correction=recipe.bias_correction)
    if recipe.lowering == "openvino-int8":
        params["preset"] = recipe.preset
    return params


def describe_onnx(params: dict[str, Any]) -> str:
    """One line naming an ONNX candidate."""
    lowering = params["lowering"]
    if lowering == "ort-int8":
        return (f"ort-int8 {params['int8_format']}, {params['fallbacks']} float fallbacks, "
                f"{params['calibration_method']}" + (", bias-corrected" if params["bias_correction"] else ""))
    if lowering == "openvino-int8":
        return f"openvino-int8 (NNCF, {params.get('preset', 'performance')} preset)"
    return lowering


def calibration_array(calib: str, samples: int | None, example: np.ndarray) -> np.ndarray:
    """The calibration inputs a recipe names: a data folder's calibration.npy or the head of its inputs.npy
    (``samples`` rows), or a bundled source (photos, a labeled set's training part, a .npy file)."""
    from ..quantization.calibration_data import load_calibration

    path = Path(calib)
    if path.suffix == ".npy" and path.is_file():
        from .._core.arrays import load_array

        x = load_array(path, argument="calib", kinds="fiu")
        x = x[:samples] if samples else x
    else:
        x = load_calibration(calib, samples or 128, tuple(example.shape))
        x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    return x.astype(example.dtype) if x.dtype != example.dtype else x


def build_onnx(source: Path, recipe: OnnxRecipe, path: Path, calibration: np.ndarray | None) -> dict[str, Any]:
    """Write ``recipe``'s candidate of the ONNX file ``source`` to ``path`` (.onnx or .xml); what the build found."""
    import shutil

    from ..quantization.onnx_dynamic import quantize_dynamic_onnx
    from ..quantization.onnx_graph import quantize_onnx_graph
    from ..quantization.openvino_ptq import convert_openvino, quantize_openvino

    lowering = recipe.lowering
    if lowering == "ort-fp32":
        shutil.copyfile(source, path)
    elif lowering == "ort-int8-dynamic":
        quantize_dynamic_onnx(source, path)
    elif lowering == "openvino-fp32":
        convert_openvino(source, path)
    elif calibration is None:
        raise DeepSeekError(f"{lowering} needs calibration inputs")
    elif lowering == "openvino-int8":
        quantize_openvino(source, calibration, path, preset=recipe.preset)
    else:
        built = quantize_onnx_graph(source, calibration, path, method=recipe.calibration_method,
                                    int8_format=recipe.int8_format, bias_correction=recipe.bias_correction,
                                    float_activations=recipe.float_activations)
        return {"int8_format": built.int8_format,
                "overflow_fixed": sum(1 for r in built.overflow if r.get("fixed"))}
    return {}


def onnx_examples(source: Path, data_shape: tuple[int, ...], data_dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The ONNX file's one input as an example of one row (its fixed batch, if any): fixed dimensions from the
    graph, free ones from the data; a mismatch is an error naming ``data``."""
    from ..quantization.onnx_graph import _graph_inputs

    inputs = _graph_inputs(source)
    if len(inputs) != 1:
        raise invalid("model", str(source), f"an ONNX model with one input (it has {len(inputs)}: "
                                            f"{[name for name, _ in inputs]})")
    dims = inputs[0][1]
    if len(dims) != len(data_shape) + 1 or any(isinstance(d, int) and d > 0 and d != s
                                               for d, s in zip(dims[1:], data_shape)):
        raise invalid("data", f"inputs of shape (N, {', '.join(map(str, data_shape))})",
                      f"inputs the model {Path(source).name} takes: {dims}")
    batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else 1
    return (np.zeros((batch, *data_shape), data_dtype),)
