"""Export and compile models into artifacts that run on the target.

``deepseek.compile(model, example_inputs, target_arch=..., output=...)`` is the Python form of
``deepseek-compile``: ``model`` is an ``nn.Module`` (or a model file / built-in name), the keyword options
match the command's flags (``optimization_level``, ``backend``, ``quantize``, ``calib``, ``prune``,
``precision``); it returns what was written and how it was verified.
"""

import sys
import types
from typing import Any

from ..runtime.onnx_export import ExportResult, export_onnx, onnx_module_scopes, verify_onnx
from .aoti import AotiPackage, build_aoti
from .arm64 import Arm64Bundle, build_arm64
from .arm64_tvm import build_arm64_tvm
from .pipeline import CompileRecipe, build
from .result import CompileResult

__all__ = ["AotiPackage", "Arm64Bundle", "CompileRecipe", "CompileResult", "ExportResult", "build", "build_aoti", "build_arm64",
           "build_arm64_tvm", "export_onnx", "onnx_module_scopes", "verify_onnx"]


class _CallableModule(types.ModuleType):
    """Lets ``deepseek.compile(...)`` be called while ``deepseek.compile.build_arm64`` etc. stay importable."""

    def __call__(self, model: Any, example_inputs: Any = None, *, target_arch: str = "x86_64", output: str,
                 optimization_level: int = 2, **options: Any) -> CompileResult:
        from .._core.errors import InvalidArgumentError
        from .pipeline import compile_model

        try:
            return compile_model(model, target_arch=target_arch, optimization_level=optimization_level, output=output,
                                 inputs=example_inputs, **options)
        except InvalidArgumentError as exc:  # compile_model calls it ``inputs``; here it is ``example_inputs``
            if str(exc).startswith("inputs:"):
                raise type(exc)("example_inputs" + str(exc)[len("inputs"):]) from None
            raise


sys.modules[__name__].__class__ = _CallableModule
