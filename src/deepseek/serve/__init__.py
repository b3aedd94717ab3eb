"""Serving: a model repository behind a :class:`ModelRouter` (versions, metadata routing, traffic split, canary
rollback, hot swaps), dynamic batching, the KServe v2 protocol on FastAPI/uvicorn, and Prometheus metrics.

Importing this package does not import torch: a process serving ONNX models stays lean.
"""

from .batcher import DynamicBatcher, HandlerError, InputRejected, QueueFull, RequestTimeout
from .config import CanaryPolicy, ModelConfig, TensorConfig
from .handler import Handler, TensorHandler
from .metrics import ServingMetrics
from .router import ModelNotFound, ModelRouter, ModelVersion

__all__ = ["CanaryPolicy", "DynamicBatcher", "Handler", "HandlerError", "InputRejected", "ModelConfig", "ModelNotFound",
           "ModelRouter", "ModelVersion", "QueueFull", "RequestTimeout", "ServingMetrics", "TensorConfig",
           "TensorHandler", "create_app"]


def __getattr__(name: str):  # the HTTP app needs fastapi: imported only when asked for
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
