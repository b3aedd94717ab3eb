"""DeepSeek: make trained PyTorch models fast and small without losing accuracy, and ship them.

Heavy dependencies (torch, onnxruntime) load on first use, so ``import deepseek`` and
``deepseek doctor`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core.errors import (
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
    "doctor": ("deepseek.bench.doctor", "doctor"),
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
# public subpackages, imported on first use; ``amp`` keeps its short spelling
_SUBMODULES = {name: f"deepseek.{name}" for name in ("assets", "runtime", "compile", "bench", "graph", "models", "nn",
                                                     "optimize", "quantization", "train", "tune")}
_SUBMODULES["amp"] = "deepseek.train.amp"

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
        module = importlib.import_module(_SUBMODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'deepseek' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from . import assets, bench, compile, graph, models, nn, optimize, quantization, runtime, train, tune
    from .bench import BenchmarkResult, benchmark
    from .bench.doctor import doctor
    from .bench.profile import profile
    from .compile import export_onnx
    from .evaluation import evaluate
    from .graph import Tensor, checkpoint_activations, dynamic_graph, static_graph
    from .nn import DeepSeekConfig, DeepSeekForCausalLM, DeepSeekModel
    from .runtime import Predictor, load
    from .train import DeepSeekTrainer, DistributedTrainer, amp
