"""Pruning: gradual unstructured sparsity on a schedule, structured channel removal, dynamic sparse training,
per-layer sparsity reports."""

from .dynamic_sparse import DynamicSparseConfig, DynamicSparseTraining
from .masks import prunable_layers, remove_masks
from .report import LayerSparsity, SparsityReport, sparsity_report
from .scheduler import SparsityConfig, SparsityScheduler
from .schedules import SCHEDULES, sparsity_at
from .structured import (
    IMPORTANCES,
    ChannelPruningConfig,
    ChannelPruningResult,
    output_layers,
    prune_channels,
    slimming_penalty,
)

__all__ = [
    "IMPORTANCES",
    "SCHEDULES",
    "ChannelPruningConfig",
    "ChannelPruningResult",
    "DynamicSparseConfig",
    "DynamicSparseTraining",
    "LayerSparsity",
    "SparsityConfig",
    "SparsityReport",
    "SparsityScheduler",
    "output_layers",
    "prunable_layers",
    "prune_channels",
    "remove_masks",
    "slimming_penalty",
    "sparsity_at",
    "sparsity_report",
]
