"""Static memory planning: intermediate buffers placed in one arena by lifetime, so buffers that are never live
at the same time share memory (greedy by size, best-fit gap — the offset planner TFLite uses)."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import operator
from typing import Any

import torch
from torch.fx import GraphModule, Node

ALIGN = 64  # bytes: every buffer starts on a cache line, so any dtype's view of the arena is aligned


@dataclasses.dataclass(frozen=True)
class Buffer:
    """One intermediate tensor: its producing node, size, and the first and last step that need it."""

    node: str
    nbytes: int
    first: int
    last: int
    offset: int | None  # in the arena; None when the allocator provides it (graph output, no out= kernel)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Peak activation memory of one captured graph: without reuse, as planned, and the lower bound."""

    buffers: tuple[Buffer, ...]
    arena_bytes: int  # the planned buffers' shared arena
    unplanned_peak_bytes: int  # most bytes of unplanned buffers (outputs, ops without an out= kernel) live at once
    naive_bytes: int  # every intermediate in its own buffer, none reused
    lower_bound_bytes: int  # most intermediate bytes live at any one step: no plan can use less
    inplace: tuple[str, ...] = ()  # pointwise nodes that overwrite their dead input instead of allocating

    @property
    def planned_bytes(self) -> int:
        """Peak activation memory with the plan (arena plus an upper bound for the unplanned buffers)."""
        return self.arena_bytes + self.unplanned_peak_bytes

    @property
    def saving(self) -> float:
        """Fraction of the naive peak the plan removes."""
        return 1 - self.planned_bytes / self.naive_bytes if self.naive_bytes else 0.0

    def offsets(self) -> dict[str, int]:
        return {b.node: b.offset for b in self.buffers if b.offset is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"naive_bytes": self.naive_bytes, "planned_bytes": self.planned_bytes, "arena_bytes": self.arena_bytes,
                "unplanned_peak_bytes": self.unplanned_peak_bytes, "lower_bound_bytes": self.lower_bound_bytes,
                "saving": self.saving, "buffers": len(self.buffers), "inplace": len(self.inplace),
                "planned_buffers": sum(b.offset is not None for b in self.buffers)}


def out_variant(target: Any, native: bool = False) -> torch._ops.OpOverload | None:
    """The ``out=`` overload of a functional ATen op taking the same arguments plus one ``out`` tensor, if any.

    ``native``: only one with its own CPU kernel — many ``out=`` overloads (convolution's among them) are
    generated wrappers that compute into a fresh tensor and copy it over, which saves nothing.
    """
    if not isinstance(target, torch._ops.OpOverload):
        return None
    want = [(a.name, str(a.type)) for a in target._schema.arguments]
    packet = target.overloadpacket
    for name in packet.overloads():
        overload = getattr(packet, name)
        args = overload._schema.arguments
        outs = [a for a in args if a.is_out]
        if len(outs) == 1 and outs[0].name == "out" and [(a.name, str(a.type)) for a in args if not a.is_out] == want:
            name = overload._schema.name + (f".{overload._schema.overload_name}" if overload._schema.overload_name else "")
            if native and not torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU"):
                return None
            return overload
    return None


def plan_memory(graph: GraphModule, native_out_only: bool = False) -> MemoryPlan:
    """Lifetimes of ``graph``'s intermediate tensors (from the shapes capture recorded), and an arena layout.

    Views share their base's buffer and extend its lifetime; a pointwise op whose input dies there overwrites
    it (in place). Graph outputs and tuple-returning ops are
    accounted for but left to the allocator, as are ops without an ``out=`` overload — and, with
    ``native_out_only`` (what :class:`PlannedExecutor` runs), ops whose ``out=`` is a copying wrapper.
    """
    nodes = list(graph.graph.nodes)
    step = {n: i for i, n in enumerate(nodes)}
    output = nodes[-1]
    root: dict[Node, Any] = {}  # node -> key of the buffer it lives in
    members: dict[Any, list[Node]] = {}  # buffer key -> the nodes living in it
    sizes: dict[Any, int] = {}
    first: dict[Any, int] = {}
    plannable: dict[Any, bool] = {}
    inplace: list[str] = []
    views: set[Node] = set()
    naive = 0
    for n in nodes:
        if n.op != "call_function":
            continue
        val = n.meta.get("val")
        if n.target is operator.getitem and isinstance(n.args[0], Node) and (n.args[0], n.args[1]) in sizes:
            root[n] = (n.args[0], n.args[1])
        elif _is_alias(n):  # a view allocates nothing; it keeps its base alive
            if isinstance(n.args[0], Node) and n.args[0] in root:
                root[n] = root[n.args[0]]
                views.add(n)
        elif isinstance(val, torch.Tensor):
            naive += _nbytes(val)
            base = n.args[0] if n.args and isinstance(n.args[0], Node) else None
            if base in root and base not in views and _can_overwrite(n, base, members[root[base]], step, output):
                root[n] = root[base]  # the pointwise op overwrites its input, which nothing reads later
                inplace.append(n.name)
            else:
                root[n] = n
                sizes[n], first[n] = _nbytes(val), step[n]
                plannable[n] = out_variant(n.target, native_out_only) is not None and val.is_contiguous()
        elif isinstance(val, (tuple, list)):
            for k, v in enumerate(val):
                if isinstance(v, torch.Tensor):
                    sizes[(n, k)], first[(n, k)], plannable[(n, k)] = _nbytes(v), step[n], False
                    naive += sizes[(n, k)]
        if n in root:
            members.setdefault(root[n], []).append(n)
    last = dict(first)
    for n, key in root.items():
        last[key] = max([last[key], *(step[user] for user in n.users)])
    for arg in output.all_input_nodes:
        if arg in root:
            plannable[root[arg]] = False
            last[root[arg]] = step[output]
    keys = list(sizes)
    offsets = _place([(k, sizes[k], first[k], last[k]) for k in keys if plannable[k]])
    arena = max((offsets[k] + _aligned(sizes[k]) for k in offsets), default=0)
    buffers = tuple(Buffer(_name(k), sizes[k], first[k], last[k], offsets.get(k)) for k in keys)
    return MemoryPlan(buffers, arena, _peak_live([b for b in buffers if b.offset is None]), naive,
                      _peak_live(list(buffers)), tuple(inplace))


def inplace_variant(target: Any) -> torch._ops.OpOverload | None:
    """The in-place (``op_``) overload of a pointwise ATen op taking the same arguments, if any."""
    if not isinstance(target, torch._ops.OpOverload) or torch.Tag.pointwise not in target.tags:
        return None
    packet = getattr(torch.ops.aten, target.overloadpacket.__name__ + "_", None)
    overload = getattr(packet, target._overloadname, None) if packet is not None else None
    if overload is None:
        return None
    names = [a.name for a in overload._schema.arguments]
    return overload if names == [a.name for a in target._schema.arguments] else None


def _can_overwrite(node: Node, base: Node, group: list[Node], step: dict[Node, int], output: Node) -> bool:
    """``node`` may write its result over ``base`` (not a view): a pointwise op with an in-place form, same shape,
    dtype and layout, and no other reader of ``base``'s buffer runs after it (nor is it a graph output)."""
    val, bval = node.meta.get("val"), base.meta.get("val")
    if inplace_variant(node.target) is None or not isinstance(bval, torch.Tensor) or not isinstance(val, torch.Tensor):
        return False
    if bval.shape != val.shape or bval.dtype != val.dtype or bval.stride() != val.stride():
        return False
    return all(u is not output and step[u] <= step[node] for m in group for u in m.users)


def _place(items: list[tuple[Any, int, int, int]]) -> dict[Any, int]:
    """Greedy by size: largest first, each into the smallest gap among the placed buffers whose lifetimes overlap."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    offsets: dict[Any, int] = {}
    for key, size, lo, hi in sorted(items, key=lambda t: (-t[1], t[2])):
        size = _aligned(size)
        busy = sorted((o, o + s) for o, s, f, la in placed if f <= hi and lo <= la)
        best, best_gap, cursor = None, None, 0
        for start, end in busy:
            gap = start - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, end)
        offset = best if best is not None else cursor
        placed.append((offset, size, lo, hi))
        offsets[key] = offset
    return offsets


def _peak_live(buffers: list[Buffer]) -> int:
    events: collections.Counter[int] = collections.Counter()
    for b in buffers:
        events[b.first] += b.nbytes
        events[b.last + 1] -= b.nbytes
    return max(itertools.accumulate((events[t] for t in sorted(events)), initial=0))


def _is_alias(node: Node) -> bool:
    """True for ops whose result shares its input's storage (views): the schema marks the return as an alias."""
    schema = getattr(node.target, "_schema", None)
    return bool(schema and schema.returns and schema.returns[0].alias_info is not None)


def _nbytes(val: torch.Tensor) -> int:
    if val.numel() == 0:
        return 0
    extent = 1 + sum((s - 1) * st for s, st in zip(val.shape, val.stride()))
    return int(extent) * val.element_size()


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _name(key: Any) -> str:
    return key.name if isinstance(key, Node) else f"{key[0].name}[{key[1]}]"
