"""DeepSeek: make trained PyTorch models fast and small without losing accuracy, and ship them.

Heavy dependencies (torch, onnxruntime) load on first use, so ``import deepseek`` and
``deepseek doctor`` stay fast.
"""

from __future__ import annotations

import importlib
import sys
import types
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
    "evaluate": ("deepseek.evaluation", "evaluate"),
    "doctor": ("deepseek.doctor", "doctor"),
    "export_onnx": ("deepseek.compile", "export_onnx"),
    "load": ("deepseek.runtime", "load"),
    "Predictor": ("deepseek.runtime", "Predictor"),
    "Tensor": ("deepseek.graph", "Tensor"),
    "dynamic_graph": ("deepseek.graph", "dynamic_graph"),
    "static_graph": ("deepseek.graph", "static_graph"),
    "checkpoint_activations": ("deepseek.graph", "checkpoint_activations"),
    "DeepSeekTrainer": ("deepseek.train", "DeepSeekTrainer"),
    "DistributedTrainer": ("deepseek.train", "DistributedTrainer"),
    "DeepSeekConfig": ("deepseek.nn", "DeepSeekConfig"),
    "DeepSeekModel": ("deepseek.nn", "DeepSeekModel"),
    "DeepSeekForCausalLM": ("deepseek.nn", "DeepSeekForCausalLM"),
}
_SUBMODULES = {"amp", "assets", "runtime", "compile", "bench", "graph", "models", "nn", "optimize", "quantization",
               "train", "tune"}

__all__ = [
    "ArtifactError",
    "BenchmarkResult",
    "DeepSeekConfig",
    "DeepSeekError",
    "DeepSeekForCausalLM",
    "DeepSeekModel",
    "DeepSeekTrainer",
    "DistributedTrainer",
    "InvalidArgumentError",
    "MissingDependencyError",
    "Predictor",
    "Tensor",
    "VerificationError",
    "__version__",
    "amp",
    "assets",
    "bench",
    "benchmark",
    "checkpoint_activations",
    "compile",
    "doctor",
    "dynamic_graph",
    "evaluate",
    "export_onnx",
    "graph",
    "load",
    "models",
    "nn",
    "optimize",
    "profile",
    "quantization",
    "runtime",
    "static_graph",
    "train",
    "tune",
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


class _Package(types.ModuleType):
    """Keeps each public function a function: importing a submodule of the same name (``deepseek.doctor``, the
    module behind ``deepseek doctor``) would otherwise bind that module over the function on this package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # the import system binding a submodule: ``deepseek.<name>`` stays the exported object
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # pragma: no cover
    from . import amp, assets, bench, compile, graph, models, nn, optimize, quantization, runtime, train, tune
    from .bench import BenchmarkResult, benchmark
    from .bench.profile import profile
    from .compile import export_onnx
    from .doctor import doctor
    from .evaluation import evaluate
    from .graph import Tensor, checkpoint_activations, dynamic_graph, static_graph
    from .nn import DeepSeekConfig, DeepSeekForCausalLM, DeepSeekModel
    from .runtime import Predictor, load
    from .train import DeepSeekTrainer, DistributedTrainer
