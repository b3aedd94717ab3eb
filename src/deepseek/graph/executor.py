"""Run a captured graph with its memory plan: planned results are written (``out=``) into one reused arena."""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import GraphModule, Node
from torch.utils import _pytree as pytree

from .capture import attribute
from .memory_plan import MemoryPlan, inplace_variant, out_variant


class PlannedExecutor:
    """Executes ``graph`` step by step; each planned intermediate lands at its arena offset, the rest allocate.

    ``plan`` must come from ``plan_memory(graph, native_out_only=True)``: only ops with a real ``out=`` kernel
    can write into the arena without a hidden copy.

    The arena is allocated once and reused by every call (so one executor must not run concurrently).
    Outputs never live in the arena: they are the caller's.
    """

    def __init__(self, graph: GraphModule, plan: MemoryPlan) -> None:
        self.graph = graph
        self.plan = plan
        self.arena = torch.empty(plan.arena_bytes, dtype=torch.uint8)
        offsets = plan.offsets()
        inplace = set(plan.inplace)
        nodes = list(graph.graph.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        self._placeholders = [index[n] for n in nodes if n.op == "placeholder"]
        self._env_size = len(nodes)
        self._constants: list[tuple[int, Any]] = []
        self._steps: list[tuple[int, Any, Any, Any, torch.Tensor | None, list[int]]] = []
        for n in nodes:
            if n.op == "get_attr":
                self._constants.append((index[n], attribute(graph, n.target)))
            elif n.op in ("call_function", "call_module"):
                fn = getattr(graph, n.target) if n.op == "call_module" else n.target
                out = None  # the arena slice a planned result is written into (``out=``)
                if n.name in inplace:
                    fn = inplace_variant(n.target)
                elif n.name in offsets:
                    val, start = n.meta["val"], offsets[n.name]
                    end = start + val.numel() * val.element_size()
                    out = self.arena[start:end].view(val.dtype).view(val.shape)
                    fn = out_variant(n.target, native=True)
                args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), lambda a: _Ref(index[a]))
                self._steps.append((index[n], fn, _getter(args), _getter(kwargs), out,
                                    [index[u] for u in _dies_at(n, index)]))
            elif n.op == "output":
                self._output = _getter(torch.fx.node.map_arg(n.args[0], lambda a: _Ref(index[a])))
        self._out_spec = getattr(graph, "_out_spec", None)

    def __call__(self, *args: Any) -> Any:
        env: list[Any] = [None] * self._env_size
        flat = args if all(type(a) is torch.Tensor for a in args) else pytree.tree_leaves(args)
        for i, value in zip(self._placeholders, flat):
            env[i] = value
        for i, value in self._constants:
            env[i] = value
        # no autograd: constants are detached and callers route inputs that require grad to eager
        for i, fn, get_args, get_kwargs, out, dead in self._steps:
            if out is None:
                env[i] = fn(*get_args(env), **get_kwargs(env))
            else:
                env[i] = fn(*get_args(env), **get_kwargs(env), out=out)
            for d in dead:  # free what no later step reads (unplanned buffers return to the allocator)
                env[d] = None
        result = self._output(env)
        return pytree.tree_unflatten(list(result), self._out_spec) if self._out_spec is not None else result


class _Ref:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _getter(obj: Any) -> Any:
    """A function of the environment that rebuilds ``obj`` with each node reference replaced by its value."""
    if isinstance(obj, _Ref):
        i = obj.i
        return lambda env: env[i]
    if isinstance(obj, (tuple, list)) and any(_refers(o) for o in obj):
        parts, kind = [_getter(o) for o in obj], type(obj)
        return lambda env: kind(p(env) for p in parts)
    if isinstance(obj, dict) and any(_refers(v) for v in obj.values()):
        items = [(k, _getter(v)) for k, v in obj.items()]
        return lambda env: {k: g(env) for k, g in items}
    return lambda env: obj


def _refers(obj: Any) -> bool:
    if isinstance(obj, _Ref):
        return True
    if isinstance(obj, (tuple, list)):
        return any(_refers(o) for o in obj)
    return isinstance(obj, dict) and any(_refers(v) for v in obj.values())


def _dies_at(node: Node, index: dict[Node, int]) -> list[Node]:
    """Inputs of ``node`` that no later node (and not the output) reads."""
    return [a for a in node.all_input_nodes if a.op == "call_function"
            and all(index[u] <= index[node] and u.op != "output" for u in a.users)]
