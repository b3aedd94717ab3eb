"""Graph passes on captured core-ATen FX graphs: conv+BN folding, constant folding, mm+bias fusion, dead code."""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import torch
from torch.fx import GraphModule, Node

from .capture import attribute

aten = torch.ops.aten


@dataclasses.dataclass(frozen=True)
class PassReport:
    """What each pass changed, and the graph's operator count before and after."""

    folded_batchnorms: int
    folded_constants: int
    fused_matmul_bias: int
    removed_dead: int
    ops_before: int
    ops_after: int

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def optimize(graph: GraphModule) -> PassReport:
    """Run every pass on ``graph`` in place (inference semantics: batch norm uses its running statistics)."""
    before = _ops(graph)
    bn = fold_conv_batchnorm(graph)
    consts = fold_constants(graph)
    fused = fuse_matmul_bias(graph)
    dead = eliminate_dead_code(graph)
    return PassReport(bn, consts, fused, dead, before, _ops(graph))


def fold_conv_batchnorm(graph: GraphModule) -> int:
    """Fold each inference batch norm that alone consumes a convolution into that convolution's weight and bias."""
    folded = 0
    for bn in list(graph.graph.nodes):
        if bn.target is not aten._native_batch_norm_legit_no_training.default:
            continue
        conv, gamma, beta, mean, var, _momentum, eps = bn.args
        if not (isinstance(conv, Node) and conv.target is aten.convolution.default and len(conv.users) == 1
                and not conv.args[6]):  # transposed convolutions keep their batch norm
            continue
        weight, bias = conv.args[1], conv.args[2]
        if not all(_is_constant(n) for n in (weight, bias, gamma, beta, mean, var) if n is not None):
            continue
        if any(u.target is not operator.getitem or u.args[1] != 0 for u in bn.users):
            continue  # the batch statistics outputs are used: keep it
        w, m, v = _value(graph, weight), _value(graph, mean), _value(graph, var)
        g = _value(graph, gamma) if gamma is not None else torch.ones_like(m)
        b = _value(graph, beta) if beta is not None else torch.zeros_like(m)
        scale = g / torch.sqrt(v + eps)
        new_w = (w * scale.reshape(-1, *([1] * (w.dim() - 1)))).detach()
        new_b = (((_value(graph, bias) if bias is not None else torch.zeros_like(m)) - m) * scale + b).detach()
        with graph.graph.inserting_before(conv):
            args = list(conv.args)
            args[1], args[2] = _constant(graph, new_w), _constant(graph, new_b)
            conv.args = tuple(args)
        for user in list(bn.users):
            user.replace_all_uses_with(conv)
            graph.graph.erase_node(user)
        graph.graph.erase_node(bn)
        folded += 1
    graph.recompile()
    return folded


def fold_constants(graph: GraphModule) -> int:
    """Evaluate once every operator whose inputs are all constants (weights, captured tensors) and store the result."""
    folded = 0
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or node.target is operator.getitem or not isinstance(node.target, torch._ops.OpOverload):
            continue
        if torch.Tag.nondeterministic_seeded in node.target.tags or not node.all_input_nodes:
            continue  # random ops draw anew on every call; ops without inputs (factories) are cheap
        if not all(_is_constant(n) for n in node.all_input_nodes):
            continue
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: _value(graph, n))
        with torch.no_grad():
            value = node.target(*args, **kwargs)
        if not isinstance(value, torch.Tensor):
            continue
        with graph.graph.inserting_before(node):
            const = _constant(graph, value)
        const.meta.update(node.meta)
        node.replace_all_uses_with(const)
        graph.graph.erase_node(node)
        folded += 1
    graph.recompile()
    return folded


def fuse_matmul_bias(graph: GraphModule) -> int:
    """``mm(a, b) + bias`` → ``addmm(bias, a, b)``: one GEMM that accumulates onto the bias, no second pass."""
    fused = 0
    for add in list(graph.graph.nodes):
        if add.target is not aten.add.Tensor or add.kwargs.get("alpha", 1) != 1 or len(add.args) != 2:
            continue
        for mm, bias in (add.args, add.args[::-1]):
            if not (isinstance(mm, Node) and mm.target is aten.mm.default and len(mm.users) == 1 and isinstance(bias, Node)):
                continue
            out, b = mm.meta.get("val"), bias.meta.get("val", _maybe_value(graph, bias))
            if out is None or b is None or b.dim() > 2 or torch.broadcast_shapes(b.shape, out.shape) != out.shape \
                    or b.dtype != out.dtype:
                continue
            with graph.graph.inserting_before(add):
                addmm = graph.graph.call_function(aten.addmm.default, (bias, *mm.args))
            addmm.meta.update(add.meta)
            add.replace_all_uses_with(addmm)
            graph.graph.erase_node(add)
            graph.graph.erase_node(mm)
            fused += 1
            break
    graph.recompile()
    return fused


def eliminate_dead_code(graph: GraphModule) -> int:
    """Remove operators whose results nothing uses (FX's pass), then attributes nothing reads; returns nodes removed."""
    before = len(graph.graph.nodes)
    graph.graph.eliminate_dead_code()
    used = {n.target for n in graph.graph.nodes if n.op == "get_attr"}
    for name in [n for n in graph._buffers if n.startswith("_folded_") and n not in used]:
        delattr(graph, name)
    graph.recompile()
    return before - len(graph.graph.nodes)


def _ops(graph: GraphModule) -> int:
    return sum(1 for n in graph.graph.nodes if n.op == "call_function")


def _is_constant(node: Any) -> bool:
    return isinstance(node, Node) and node.op == "get_attr"


def _value(graph: GraphModule, node: Any) -> Any:
    return attribute(graph, node.target) if isinstance(node, Node) else node


def _maybe_value(graph: GraphModule, node: Node) -> Any:
    return _value(graph, node) if _is_constant(node) else None


def _constant(graph: GraphModule, value: torch.Tensor) -> Node:
    """A new get_attr node reading ``value``, stored as a buffer of ``graph``."""
    i = 0
    while hasattr(graph, f"_folded_{i}"):
        i += 1
    graph.register_buffer(f"_folded_{i}", value)
    node = graph.graph.get_attr(f"_folded_{i}")
    node.meta["val"] = value
    return node
