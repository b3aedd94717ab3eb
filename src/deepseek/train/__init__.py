"""Training: ``DeepSeekTrainer`` (mixed precision, clipping, accumulation, callbacks, exact resume),
``DistributedTrainer`` (the same across processes: DDP, ZeRO-1 or FSDP2, compressed gradients, sharded
asynchronous checkpoints, elastic restarts), ``IncrementalCheckpointer`` (saves only what changed) and
``fit_classifier``, the minimal loop used by examples."""

from __future__ import annotations

from .._core.lazy import lazy_getattr
from .config import DistributedConfig, OptimizerConfig

# the rest import torch: loaded when first asked for, so `deepseek train` checks its options (config.py) and
# starts torchrun without paying for a torch import of its own
_LAZY = {"CommStats": "comm_hooks", "DistributedTrainer": "distributed", "IncrementalCheckpointer": "incremental_checkpoint",
         "SaveStats": "incremental_checkpoint", "accuracy": "simple", "fit_classifier": "simple",
         "SyncBatchNorm": "sync_bn", "convert_sync_batchnorm": "sync_bn", "Callback": "trainer",
         "DeepSeekTrainer": "trainer"}

__all__ = ["Callback", "CommStats", "DeepSeekTrainer", "DistributedConfig", "DistributedTrainer",
           "IncrementalCheckpointer", "OptimizerConfig", "SaveStats", "SyncBatchNorm", "accuracy",
           "convert_sync_batchnorm", "fit_classifier"]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
