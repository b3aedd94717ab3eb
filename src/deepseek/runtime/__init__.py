"""One Predictor API over PyTorch eager, torch.compile, ONNX Runtime (CPU, CUDA, TensorRT) and OpenVINO (CPU)."""

from .artifacts import detect_kind
from .backends import ALIASES as BACKEND_ALIASES
from .backends import InputSpec, canonical_backend
from .predictor import Predictor, load

__all__ = ["BACKEND_ALIASES", "InputSpec", "Predictor", "canonical_backend", "detect_kind", "load"]
