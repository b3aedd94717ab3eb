"""Export and compile models into artifacts that run on the target."""

from .aoti import AotiPackage, build_aoti
from .arm64 import Arm64Bundle, build_arm64
from .arm64_tvm import build_arm64_tvm
from .onnx_export import ExportResult, export_onnx, onnx_module_scopes, verify_onnx

__all__ = ["AotiPackage", "Arm64Bundle", "ExportResult", "build_aoti", "build_arm64", "build_arm64_tvm", "export_onnx",
           "onnx_module_scopes", "verify_onnx"]
