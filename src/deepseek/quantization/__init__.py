"""Quantization: one verb, ``quantize(model, config)``, with a config per scheme.

Static INT8 for ONNX Runtime in the layout this CPU class needs (:class:`StaticINT8Config`), OpenVINO + NNCF
(:class:`OpenVINOINT8Config`), dynamic INT8 for ONNX (:class:`DynamicINT8Config`), PyTorch 2 export INT8
(:class:`PT2EConfig`), PyTorch dynamic / hybrid INT8 for Linear layers (:class:`LinearINT8Config`), INT4/INT8
weight-only for LLMs (:class:`WeightOnlyConfig`), quantization-aware training (:class:`QATConfig`, prepare then
convert) and per-layer mixed precision under a budget (:class:`MixedPrecisionConfig`). The per-scheme functions
(``quantize_static_onnx``, ``quantize_pt2e``, ...) take the same config or its fields as keywords. Observers, fake
quantization and the QAT steps live in their submodules (``deepseek.quantization.observers``, ``.fake_quant``,
``.qat``).
"""

from .api import HANDLERS, LinearINT8Config, quantize
from .dynamic_quantizer import DynamicQuantizer
from .mixed_precision import MixedPrecisionConfig, MixedPrecisionPlan, plan_mixed_precision
from .onnx_dynamic import DynamicINT8Config, quantize_dynamic_onnx
from .onnx_static import StaticINT8Config, StaticQuantResult, quantize_static_onnx
from .openvino_ptq import OpenVINOINT8Config, OpenVinoQuantResult, quantize_openvino
from .precision import PrecisionPlan, choose_precision
from .pt2e import PT2EConfig, PT2EModule, quantize_pt2e
from .qat import QATConfig
from .report import QuantReport, quantization_report
from .sensitivity import layer_sensitivity, sqnr_db
from .weight_only import WeightOnlyConfig, WeightOnlyLinear, quantize_weights, weight_only_layers

__all__ = [
    "HANDLERS",
    "DynamicINT8Config",
    "DynamicQuantizer",
    "LinearINT8Config",
    "MixedPrecisionConfig",
    "MixedPrecisionPlan",
    "OpenVINOINT8Config",
    "OpenVinoQuantResult",
    "PT2EConfig",
    "PT2EModule",
    "PrecisionPlan",
    "QATConfig",
    "QuantReport",
    "StaticINT8Config",
    "StaticQuantResult",
    "WeightOnlyConfig",
    "WeightOnlyLinear",
    "choose_precision",
    "layer_sensitivity",
    "plan_mixed_precision",
    "quantization_report",
    "quantize",
    "quantize_dynamic_onnx",
    "quantize_openvino",
    "quantize_pt2e",
    "quantize_static_onnx",
    "quantize_weights",
    "sqnr_db",
    "weight_only_layers",
]
