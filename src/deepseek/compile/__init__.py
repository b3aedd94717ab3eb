"""Export and compile models into artifacts that run on the target."""

from .onnx_export import ExportResult, export_onnx, onnx_module_scopes, verify_onnx

__all__ = ["ExportResult", "export_onnx", "onnx_module_scopes", "verify_onnx"]
