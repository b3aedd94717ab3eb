"""Edits of QDQ ONNX models: which activations are quantized, and leaving chosen ones in float.

Leaving an activation float means dropping its QuantizeLinear → DequantizeLinear pair: its consumers then
read the float tensor. ORT's quantizer drops a Relu/Clip before a QuantizeLinear (the uint8 range clamps
in its place), so the FP32 model's activation is put back where that happened.

That is also how a layer kept in FP32 stays FP32 in ONNX Runtime: if its input came from a
DequantizeLinear, ORT's ``WeightBiasQuantization`` optimizer (ORT ≥ 1.20) would quantize its float weights
itself — per tensor, coarser than the per-channel INT8 it was excluded from.
"""

from __future__ import annotations

import copy
from typing import Any


def quantized_activations(model: Any) -> list[str]:
    """Names of the non-constant tensors the QDQ ``model`` quantizes (inputs of its QuantizeLinear nodes), in
    graph order."""
    constants = {t.name for t in model.graph.initializer} | {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    names = [n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in constants]
    return list(dict.fromkeys(names))


def leave_float(model: Any, tensors: set[str] | list[str], fp32: Any) -> Any:
    """A copy of ``model`` where each tensor in ``tensors`` reaches its consumers in float: every Q → DQ
    pair on it becomes an Identity (ORT removes it; graph output names are kept), and a Relu/Clip the
    quantizer folded into that pair is restored from the ``fp32`` model it was quantized from."""
    wanted = set(tensors)
    out = copy.deepcopy(model)
    graph = out.graph
    q_nodes = {n.output[0]: n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in wanted}
    dropped = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in q_nodes:
            q = q_nodes[node.input[0]]
            node.op_type, node.domain = "Identity", ""
            del node.input[:]
            node.input.append(q.input[0])
            del node.attribute[:]
            dropped.add(q.output[0])
    read = {i for n in graph.node for i in n.input}
    kept = [n for n in graph.node if not (n.op_type == "QuantizeLinear" and n.output[0] in dropped and n.output[0] not in read)]
    del graph.node[:]
    graph.node.extend(kept)
    _restore_activations(out, {q.input[0] for q in q_nodes.values()}, fp32)
    _drop_unused_initializers(out)
    return out


def leave_named_float(model: Any, tensors: list[str], fp32: Any, *, source: str) -> Any:
    """:func:`leave_float` of ``tensors``, each checked to be a quantized activation of ``model`` (an unknown name is
    an error naming ``float_activations`` and ``source``, what the names must come from)."""
    from .._core.errors import invalid

    known = set(quantized_activations(model))
    unknown = [t for t in tensors if t not in known]
    if unknown:
        raise invalid("float_activations", unknown[:3], f"quantized activation tensors of {source} (e.g. "
                                                        f"{sorted(known)[:3]})")
    return leave_float(model, list(tensors), fp32)


def _restore_activations(model: Any, tensors: set[str], fp32: Any) -> None:
    fp32_producer = {o: n for n in fp32.graph.node for o in n.output}
    fp32_inits = {t.name: t for t in fp32.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    present = {t.name for t in model.graph.initializer}
    for t in tensors:
        original, now = fp32_producer.get(t), producer.get(t)
        if original is None or now is None or original.op_type not in ("Relu", "Clip") or now.op_type == original.op_type:
            continue
        pre = f"{t}_before_{original.op_type.lower()}"
        now.output[list(now.output).index(t)] = pre
        restored = copy.deepcopy(original)
        restored.input[0] = pre
        model.graph.node.append(restored)
        for name in restored.input[1:]:
            if name and name not in present and name in fp32_inits:
                model.graph.initializer.append(copy.deepcopy(fp32_inits[name]))
                present.add(name)
    _topological_sort(model)


def float_outputs(model: Any) -> int:
    """Drop (in place) the Quantize/Dequantize pair in front of each graph output, so the layer producing it hands
    its float result straight out: 8 bits over a model's whole output range round its top scores together (on
    MobileNetV2 a logit step of ~0.1 flipped near-ties). Returns how many outputs were freed."""
    producer = {out: node for node in model.graph.node for out in node.output}
    freed = 0
    for output in model.graph.output:
        dq = producer.get(output.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in producer:
            continue
        if any(q.input[0] in n.input for n in model.graph.node if n is not q):  # the float tensor has other users
            continue
        source = producer[q.input[0]]
        source.output[list(source.output).index(q.input[0])] = output.name
        model.graph.node.remove(dq)
        model.graph.node.remove(q)
        freed += 1
    if freed:
        _drop_unused_initializers(model)
    return freed


def _topological_sort(model: Any) -> None:
    graph = model.graph
    ready = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:  # a dangling input: leave the rest in their order
            ordered += pending
            break
        for n in runnable:
            ordered.append(n)
            ready.update(n.output)
        done = {id(n) for n in runnable}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def _drop_unused_initializers(model: Any) -> None:
    read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    kept = [t for t in model.graph.initializer if t.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def inputs_of(model: Any, node_names: set[str] | list[str]) -> set[str]:
    """The activation inputs (first input) of the named nodes, as the float tensors behind any Q/DQ."""
    wanted = set(node_names)
    producer = {o: n for n in model.graph.node for o in n.output}
    found = set()
    for node in model.graph.node:
        if node.name in wanted and node.input:
            name = node.input[0]
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear":
                q = producer.get(dq.input[0])
                name = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else name
            found.add(name)
    return found
