"""Pruning: gradual unstructured sparsity on a schedule, structured channel removal, per-layer sparsity reports."""

from .masks import prunable_layers, remove_masks
from .report import LayerSparsity, SparsityReport, sparsity_report
from .scheduler import SparsityConfig, SparsityScheduler
from .schedules import SCHEDULES, sparsity_at
from .structured import IMPORTANCES, ChannelPruningConfig, ChannelPruningResult, output_layers, prune_channels

__all__ = [
    "IMPORTANCES",
    "SCHEDULES",
    "ChannelPruningConfig",
    "ChannelPruningResult",
    "LayerSparsity",
    "SparsityConfig",
    "SparsityReport",
    "SparsityScheduler",
    "output_layers",
    "prunable_layers",
    "prune_channels",
    "remove_masks",
    "sparsity_at",
    "sparsity_report",
]
