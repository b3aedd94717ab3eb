"""Training: ``DeepSeekTrainer`` (mixed precision, clipping, accumulation, callbacks, exact resume),
``DistributedTrainer`` (the same across processes: DDP, ZeRO-1 or FSDP2, compressed gradients, sharded
asynchronous checkpoints, elastic restarts), ``IncrementalCheckpointer`` (saves only what changed) and
``fit_classifier``, the minimal loop used by examples."""

from .comm_hooks import CommStats
from .config import DistributedConfig, OptimizerConfig
from .distributed import DistributedTrainer
from .incremental_checkpoint import IncrementalCheckpointer, SaveStats
from .simple import accuracy, fit_classifier
from .sync_bn import SyncBatchNorm, convert_sync_batchnorm
from .trainer import Callback, DeepSeekTrainer

__all__ = ["Callback", "CommStats", "DeepSeekTrainer", "DistributedConfig", "DistributedTrainer",
           "IncrementalCheckpointer", "OptimizerConfig", "SaveStats", "SyncBatchNorm", "accuracy",
           "convert_sync_batchnorm", "fit_classifier"]
