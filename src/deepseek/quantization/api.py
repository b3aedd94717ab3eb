"""One verb for every quantization scheme: ``quantize(model, config)``, the config's type choosing the scheme.

| config | model | needs | returns |
|---|---|---|---|
| :class:`StaticINT8Config` | ``nn.Module`` | ``calibration``, ``output`` (.onnx); ``held_out`` optional | :class:`StaticQuantResult` |
| :class:`OpenVINOINT8Config` | ``nn.Module`` or .onnx | ``calibration``, ``output`` (.xml); ``held_out`` optional | :class:`OpenVinoQuantResult` |
| :class:`DynamicINT8Config` | .onnx file | ``output`` (.onnx) | the written ``Path`` |
| :class:`PT2EConfig` | ``nn.Module`` | ``example_inputs``; ``calibration`` unless dynamic | :class:`PT2EModule` (compiled) |
| :class:`LinearINT8Config` | ``nn.Module`` | ``example_inputs`` for ``hybrid`` | a quantized copy |
| :class:`WeightOnlyConfig` | ``nn.Module`` | — | the model, its Linear layers swapped in place |
| :class:`QATConfig` | ``nn.Module`` | ``calibration`` optional at ``step="convert"`` | the model, prepared or converted in place |
| :class:`MixedPrecisionConfig` | ``nn.Module`` | ``calibration`` | a :class:`MixedPrecisionPlan` (the model untouched) |

Which to use: on a CPU served by ONNX Runtime, :class:`StaticINT8Config` (the INT8 layout this CPU class needs is
chosen for you); transformer encoders without calibration data, :class:`DynamicINT8Config`; LLM decoding,
:class:`WeightOnlyConfig`; staying in PyTorch, :class:`PT2EConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from .._core.checks import check_choice, check_flag, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid
from .dynamic_quantizer import DynamicQuantizer
from .mixed_precision import MixedPrecisionConfig, MixedPrecisionPlan, plan_mixed_precision
from .onnx_dynamic import DynamicINT8Config, quantize_dynamic_onnx
from .onnx_static import StaticINT8Config, StaticQuantResult, quantize_static_onnx
from .openvino_ptq import OpenVINOINT8Config, OpenVinoQuantResult, quantize_openvino
from .pt2e import PT2EConfig, PT2EModule, quantize_pt2e
from .qat import QATConfig, calibrate, convert
from .weight_only import WeightOnlyConfig, quantize_weights

Quantized = StaticQuantResult | OpenVinoQuantResult | PT2EModule | MixedPrecisionPlan | torch.nn.Module | Any


@dataclasses.dataclass(frozen=True)
class LinearINT8Config(BaseConfig):
    """INT8 (or INT4) for a model's ``nn.Linear`` layers in PyTorch, no calibration data.

    ``method="dynamic"``: int8 weights per channel and int8 activations quantized on each call (torchao's kernels);
    ``"hybrid"``: ``weight_bits`` per layer (a pair gives the first layer the first width and the rest the second,
    e.g. ``(4, 8)``), and 8-bit layers whose measured sensitivity is at most ``activation_threshold`` also get int8
    activations, the rest run weight-only. ``compile``: run through Inductor."""

    method: str = "dynamic"
    weight_bits: int | tuple[int, ...] = 8
    activation_bits: int = 8
    activation_threshold: float = 0.6
    compile: bool = True

    def __post_init__(self) -> None:
        check_choice(self.method, "method", ("dynamic", "hybrid"),
                     expected="'dynamic' or 'hybrid' (static INT8 in PyTorch: PT2EConfig)")
        widths = (self.weight_bits,) if isinstance(self.weight_bits, int) else tuple(self.weight_bits)
        if not widths or any(isinstance(b, bool) or b not in (4, 8) for b in widths):
            raise invalid("weight_bits", self.weight_bits, "4, 8, or a pair of them (e.g. (4, 8))")
        object.__setattr__(self, "weight_bits", widths[0] if len(widths) == 1 else widths)
        check_choice(self.activation_bits, "activation_bits", (8, 16),
                     expected="8 (int8) or 16 (bfloat16, weight-only)")
        check_number(self.activation_threshold, "activation_threshold", above=0, maximum=1,
                     expected="a number in (0, 1]")
        check_flag(self.compile, "compile")


def _static(model: Any, config: StaticINT8Config, data: dict[str, Any]) -> StaticQuantResult:
    return quantize_static_onnx(model, _needed(data, "calibration", config), _needed(data, "output", config), config,
                                held_out=data["held_out"])


def _openvino(model: Any, config: OpenVINOINT8Config, data: dict[str, Any]) -> OpenVinoQuantResult:
    return quantize_openvino(model, _needed(data, "calibration", config), _needed(data, "output", config), config,
                             held_out=data["held_out"])


def _dynamic_onnx(model: Any, config: DynamicINT8Config, data: dict[str, Any]) -> Any:
    return quantize_dynamic_onnx(model, _needed(data, "output", config), config)


def _pt2e(model: Any, config: PT2EConfig, data: dict[str, Any]) -> PT2EModule:
    return quantize_pt2e(model, _needed(data, "example_inputs", config), data["calibration"], config)


def _linear(model: Any, config: LinearINT8Config, data: dict[str, Any]) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    if config.method == "hybrid" and config.activation_bits == 8:
        _needed(data, "example_inputs", config)  # the layers' sensitivity is measured on them
    quantizer = DynamicQuantizer(model, activation_threshold=config.activation_threshold,
                                 example_inputs=data["example_inputs"])
    return quantizer.quantize(config.method, config.weight_bits, config.activation_bits, compile=config.compile)


def _weight_only(model: Any, config: WeightOnlyConfig, data: dict[str, Any]) -> torch.nn.Module:
    return quantize_weights(model, config)


def _qat(model: Any, config: QATConfig, data: dict[str, Any]) -> torch.nn.Module:
    if config.step == "prepare":
        return config.apply(model)
    if data["calibration"] is not None:
        calibrate(model, data["calibration"])
    return convert(model)


def _mixed(model: Any, config: MixedPrecisionConfig, data: dict[str, Any]) -> MixedPrecisionPlan:
    return plan_mixed_precision(model, _needed(data, "calibration", config), config)


HANDLERS: MappingProxyType[type, Callable[[Any, Any, dict[str, Any]], Any]] = MappingProxyType({
    StaticINT8Config: _static,
    OpenVINOINT8Config: _openvino,
    DynamicINT8Config: _dynamic_onnx,
    PT2EConfig: _pt2e,
    LinearINT8Config: _linear,
    WeightOnlyConfig: _weight_only,
    QATConfig: _qat,
    MixedPrecisionConfig: _mixed,
})
# which call arguments each scheme reads (any other one given is refused rather than ignored)
_READS = {StaticINT8Config: {"calibration", "output", "held_out"}, OpenVINOINT8Config: {"calibration", "output", "held_out"},
          DynamicINT8Config: {"output"}, PT2EConfig: {"calibration", "example_inputs"},
          LinearINT8Config: {"example_inputs"}, WeightOnlyConfig: set(), QATConfig: {"calibration"},
          MixedPrecisionConfig: {"calibration"}}


def _needed(data: dict[str, Any], name: str, config: Any) -> Any:
    if data[name] is None:
        raise invalid(name, None, f"a value: {type(config).__name__} needs it")
    return data[name]


def quantize(model: Any, config: BaseConfig, *, calibration: Any = None, output: Any = None,
             example_inputs: Any = None, held_out: Any = None) -> Quantized:
    """Quantize ``model`` by the scheme ``config`` names (see the module's table for what each needs and returns).

    ``calibration``: real inputs (a tensor, or batches / (inputs, labels) pairs) for calibrated schemes; ``output``:
    the file an ONNX or OpenVINO scheme writes; ``example_inputs``: what a PyTorch export traces with; ``held_out``:
    inputs the calibration never saw, on which a static INT8 model is held to its agreement floor."""
    handler = HANDLERS.get(type(config))
    if handler is None:
        raise invalid("config", type(config).__name__, f"one of {[t.__name__ for t in HANDLERS]}")
    data = {"calibration": calibration, "output": output, "example_inputs": example_inputs, "held_out": held_out}
    extra = [name for name, value in data.items() if value is not None and name not in _READS[type(config)]]
    if extra:
        raise invalid(extra[0], type(data[extra[0]]).__name__, f"None for {type(config).__name__}, which does not use it")
    return handler(model, config, data)
