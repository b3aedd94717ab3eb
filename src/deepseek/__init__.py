"""DeepSeek: make trained PyTorch models fast and small without losing accuracy, and ship them.

Heavy dependencies (torch, onnxruntime) load on first use, so ``import deepseek`` and
``deepseek doctor`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    ArtifactError,
    DeepSeekError,
    InvalidArgumentError,
    MissingDependencyError,
    VerificationError,
)

__version__ = "0.1.0"

_LAZY = {
    "benchmark": ("deepseek.bench", "benchmark"),
    "BenchmarkResult": ("deepseek.bench", "BenchmarkResult"),
    "profile": ("deepseek.bench.profile", "profile"),
    "evaluate": ("deepseek.evaluate", "evaluate"),
    "doctor": ("deepseek.doctor", "doctor"),
    "export_onnx": ("deepseek.compile", "export_onnx"),
    "load": ("deepseek.runtime", "load"),
    "Predictor": ("deepseek.runtime", "Predictor"),
}
_SUBMODULES = {"assets", "runtime", "compile", "bench", "models", "quantization", "train"}

__all__ = [
    "ArtifactError",
    "BenchmarkResult",
    "DeepSeekError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "Predictor",
    "VerificationError",
    "__version__",
    "assets",
    "bench",
    "benchmark",
    "compile",
    "doctor",
    "evaluate",
    "export_onnx",
    "load",
    "models",
    "profile",
    "quantization",
    "runtime",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"deepseek.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'deepseek' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from . import assets, bench, compile, models, quantization, runtime, train
    from .bench import BenchmarkResult, benchmark
    from .bench.profile import profile
    from .compile import export_onnx
    from .doctor import doctor
    from .evaluate import evaluate
    from .runtime import Predictor, load
