"""Capture a function or module into an ATen-level FX graph for one input signature (torch.export)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._core.errors import DeepSeekError
from .._core.export import export_failure


class CaptureError(DeepSeekError, RuntimeError):
    """torch.export could not capture the callable (a graph break); the message says why and where."""


class _AsModule(torch.nn.Module):
    """A plain function as a module, so torch.export can capture it (tensors it closes over become constants)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


def capture(fn: Callable[..., Any], args: tuple[Any, ...]) -> torch.fx.GraphModule:
    """``fn`` (a function or ``nn.Module``) traced on ``args`` into functional core-ATen ops, shapes in ``node.meta``.

    Parameters, buffers and captured tensors become attributes of the returned module; its outputs are flat.
    """
    module = fn if isinstance(fn, torch.nn.Module) else _AsModule(fn)
    try:
        program = torch.export.export(module, args, strict=False).run_decompositions()
    except Exception as e:  # torch.export raises many types; all mean "cannot capture"
        raise CaptureError(f"cannot capture {getattr(fn, '__name__', type(fn).__name__)}: {export_failure(e)}") from e
    graph = program.module()
    for node in list(graph.graph.nodes):  # input guards: callers key graphs by input signature instead
        if node.op == "call_module" and node.target == "_guards_fn" and not node.users:
            graph.graph.erase_node(node)
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return graph


def attribute(graph: torch.fx.GraphModule, target: str) -> Any:
    """The value a ``get_attr`` node reads (tensors detached: captured graphs run without autograd)."""
    obj: Any = graph
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj.detach() if isinstance(obj, torch.Tensor) else obj
