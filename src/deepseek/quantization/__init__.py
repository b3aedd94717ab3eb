"""Quantization: observers, fake quantization (STE, LSQ/LSQ+), quantization-aware training."""

from .fake_quant import FakeQuantize, fake_quantize, lsq_fake_quantize
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
from .onnx_static import StaticQuantResult, quantize_static_onnx
from .qat import QATConfig, calibrate, convert, fake_quantizers, fold_batchnorm
from .report import LayerReport, QuantReport, quantization_report
from .sensitivity import LayerSensitivity, layer_sensitivity, output_kl, sqnr_db
from .spec import OBSERVERS, QuantSpec

__all__ = [
    "OBSERVERS",
    "FakeQuantize",
    "HistogramObserver",
    "LayerReport",
    "LayerSensitivity",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageObserver",
    "Observer",
    "PercentileObserver",
    "QATConfig",
    "QuantReport",
    "QuantSpec",
    "StaticQuantResult",
    "calibrate",
    "convert",
    "fake_quantize",
    "fake_quantizers",
    "fold_batchnorm",
    "layer_sensitivity",
    "lsq_fake_quantize",
    "make_observer",
    "output_kl",
    "qparams_from_range",
    "quantization_report",
    "quantize_dynamic_onnx",
    "quantize_static_onnx",
    "sqnr_db",
]
