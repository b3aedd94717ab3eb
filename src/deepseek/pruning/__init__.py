"""Pruning: gradual unstructured sparsity on a schedule, structured channel removal, dynamic sparse training,
input-dependent channel gating (dynamic channel selection), per-layer sparsity reports."""

from .dynamic_channels import DynamicChannelModel, GatedConv2d, dynamic_channels
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
    "DynamicChannelModel",
    "DynamicSparseConfig",
    "DynamicSparseTraining",
    "GatedConv2d",
    "LayerSparsity",
    "SparsityConfig",
    "SparsityReport",
    "SparsityScheduler",
    "dynamic_channels",
    "output_layers",
    "prunable_layers",
    "prune_channels",
    "remove_masks",
    "slimming_penalty",
    "sparsity_at",
    "sparsity_report",
]
