"""Export and compile models into artifacts that run on the target."""

from .arm64 import Arm64Bundle, build_arm64
from .onnx_export import ExportResult, export_onnx, onnx_module_scopes, verify_onnx

__all__ = ["Arm64Bundle", "ExportResult", "build_arm64", "export_onnx", "onnx_module_scopes", "verify_onnx"]
