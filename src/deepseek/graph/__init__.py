"""The compute-graph layer: eager (dynamic) and captured (static) graphs mixed in one program.

``deepseek.Tensor`` is ``torch.Tensor``: both graph kinds run PyTorch tensors. ``static_graph`` captures a
function or module with torch.export per input signature, optimizes the graph (conv+BN folding, constant
folding, matmul+bias fusion, dead-code elimination), plans its activation memory and runs it;
``dynamic_graph()`` runs everything eagerly for debugging.
"""

from torch import Tensor

from .capture import CaptureError, capture
from .checkpoint import checkpoint_activations, saved_activation_bytes
from .executor import PlannedExecutor
from .memory_plan import Buffer, MemoryPlan, plan_memory
from .passes import (
    PassReport,
    eliminate_dead_code,
    fold_constants,
    fold_conv_batchnorm,
    fuse_matmul_bias,
    optimize,
)
from .static import GraphReport, StaticGraph, dynamic_graph, static_graph

__all__ = [
    "Buffer",
    "CaptureError",
    "GraphReport",
    "MemoryPlan",
    "PassReport",
    "PlannedExecutor",
    "StaticGraph",
    "Tensor",
    "capture",
    "checkpoint_activations",
    "dynamic_graph",
    "eliminate_dead_code",
    "fold_constants",
    "fold_conv_batchnorm",
    "fuse_matmul_bias",
    "optimize",
    "plan_memory",
    "saved_activation_bytes",
    "static_graph",
]
