"""Export and compile models into artifacts that run on the target."""

from .onnx_export import ExportResult, export_onnx, verify_onnx

__all__ = ["ExportResult", "export_onnx", "verify_onnx"]
