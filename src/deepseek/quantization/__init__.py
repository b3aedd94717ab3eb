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
from .qat import QATConfig, calibrate, convert, fake_quantizers, fold_batchnorm
from .spec import OBSERVERS, QuantSpec

__all__ = [
    "OBSERVERS",
    "FakeQuantize",
    "HistogramObserver",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageObserver",
    "Observer",
    "PercentileObserver",
    "QATConfig",
    "QuantSpec",
    "calibrate",
    "convert",
    "fake_quantize",
    "fake_quantizers",
    "fold_batchnorm",
    "lsq_fake_quantize",
    "make_observer",
    "qparams_from_range",
]
