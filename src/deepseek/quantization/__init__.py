"""Quantization: observers, fake quantization (STE, LSQ/LSQ+), quantization-aware training."""

from .dynamic_quantizer import DynamicQuantizer, QuantizerBenchmark, load_model
from .fake_quant import FakeQuantize, fake_quantize, lsq_fake_quantize
from .mixed_precision import MixedPrecisionConfig, MixedPrecisionPlan, plan_mixed_precision
from .observers import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
    make_observer,
    qparams_from_range,
)
from .onnx_dynamic import quantize_dynamic_onnx
from .onnx_static import CalibrationReader, StaticQuantResult, quantize_static_onnx
from .precision import PrecisionPlan, choose_precision
from .pt2e import PT2EModule, quantize_pt2e, x86_quantizer
from .qat import QATConfig, calibrate, convert, fake_quantizers, fold_batchnorm
from .report import LayerReport, QuantReport, quantization_report
from .sensitivity import LayerSensitivity, layer_sensitivity, output_kl, sqnr_db
from .spec import OBSERVERS, QuantSpec
from .weight_only import WeightOnlyConfig, WeightOnlyLinear, quantize_weights, weight_only_layers

__all__ = [
    "OBSERVERS",
    "CalibrationReader",
    "DynamicQuantizer",
    "FakeQuantize",
    "HistogramObserver",
    "LayerReport",
    "LayerSensitivity",
    "MSEObserver",
    "MinMaxObserver",
    "MixedPrecisionConfig",
    "MixedPrecisionPlan",
    "MovingAverageObserver",
    "Observer",
    "PT2EModule",
    "PercentileObserver",
    "PrecisionPlan",
    "QATConfig",
    "QuantReport",
    "QuantSpec",
    "QuantizerBenchmark",
    "StaticQuantResult",
    "WeightOnlyConfig",
    "WeightOnlyLinear",
    "calibrate",
    "choose_precision",
    "convert",
    "fake_quantize",
    "fake_quantizers",
    "fold_batchnorm",
    "layer_sensitivity",
    "load_model",
    "lsq_fake_quantize",
    "make_observer",
    "output_kl",
    "plan_mixed_precision",
    "qparams_from_range",
    "quantization_report",
    "quantize_dynamic_onnx",
    "quantize_pt2e",
    "quantize_static_onnx",
    "quantize_weights",
    "sqnr_db",
    "weight_only_layers",
    "x86_quantizer",
]
