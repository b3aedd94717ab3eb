"""Training: ``DeepSeekTrainer`` (mixed precision, clipping, accumulation, callbacks, exact resume) and
``fit_classifier``, the minimal loop used by examples, benchmarks and tests."""

from .config import DistributedConfig, OptimizerConfig
from .simple import accuracy, fit_classifier
from .trainer import Callback, DeepSeekTrainer

__all__ = ["Callback", "DeepSeekTrainer", "DistributedConfig", "OptimizerConfig", "accuracy", "fit_classifier"]
