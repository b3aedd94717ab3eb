"""AdaRound (Nagel et al., ICML 2020) for the int8 weights of a QDQ ONNX model: each weight is rounded up or down —
not to nearest — so that its layer's output on real calibration inputs stays closest to FP32.

For every Conv / Gemm / MatMul whose weight ONNX Runtime quantized to int8 (per output channel, its scale in the
graph), a soft rounding variable ``h(V)`` in [0, 1] (the rectified sigmoid) is learned per weight to minimise
``||layer(x; s * (floor(W / s) + h(V))) - layer(x; W)||^2`` over the layer's FP32 inputs ``x``, plus a regulariser
``lambda * sum(1 - |2h - 1|^beta)`` (beta annealed 20 -> 2) that drives every ``h`` to 0 or 1. The int8 values
``floor(W / s) + round(h)`` then replace the graph's own: the scales, zero points and everything else ONNX Runtime
chose stay as they are, so the model runs exactly as before, with better-rounded weights.

``granularity="block"`` (BRECQ, Li et al., ICLR 2021) learns the rounding of all the layers of a block at once
(a block: the smallest sub-module holding at most ``max_block_layers`` of them, such as one MobileNetV2 inverted
residual with its skip connection) against the FP32 block's output, and feeds each block the output of the blocks
before it with their int8 weights already chosen — so a block also corrects the error it receives (AdaRound's
asymmetric reconstruction). Activations stay in float during the reconstruction in both modes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import numpy as np
import torch

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (the paper's values)


@dataclasses.dataclass(frozen=True)
class AdaRoundStats:
    """Layers rounded, weights that AdaRound rounds the other way than nearest, and the summed output MSE before
    and after on the calibration inputs."""

    layers: int
    weights: int
    flipped: int
    mse_nearest: float
    mse_adaround: float


def adaround_qdq(qdq: Any, model: torch.nn.Module, scopes: dict[str, str], batches: list[torch.Tensor], *,
                 iterations: int = 400, lam: float = 0.01, samples: int = 64, seed: int = 0,
                 progress: bool = True, granularity: str = "layer",
                 max_block_layers: int = 4) -> tuple[Any, AdaRoundStats]:
    """A copy of ``qdq`` (an ONNX ModelProto) with AdaRound's int8 weights; ``model`` is the PyTorch module it was
    exported from (BatchNorm folded, as exported) and ``scopes`` maps its ONNX nodes to the module's layers."""
    import copy

    from onnx import numpy_helper

    from .._core.progress import progress as bar_context

    qdq = _copy(qdq)
    inits = {t.name: t for t in qdq.graph.initializer}
    producers = {o: n for n in qdq.graph.node for o in n.output}
    modules = dict(model.named_modules())
    targets = []
    for node in qdq.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        dq = producers.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        layer = modules.get(scopes.get(node.name) or scopes.get(node.output[0], ""))
        if not isinstance(layer, (torch.nn.Conv2d, torch.nn.Conv1d, torch.nn.Linear)):
            continue
        targets.append((node, dq, layer))
    if granularity not in ("layer", "block"):
        raise ValueError(f"granularity: expected 'layer' or 'block', got {granularity!r}")
    found = _targets_of(inits, model, targets)
    data = torch.cat(batches)[:samples]
    working = copy.deepcopy(model).eval()  # its weights become the chosen int8 values, block after block
    for p in working.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    blocks = granularity == "block"
    groups = _group_blocks([t.name for t in found], max_block_layers) if blocks else \
        [(t.name, [i]) for i, t in enumerate(found)]
    inputs = {} if blocks else _layer_inputs(model, [modules[t.name] for t in found], data)
    total = flipped = 0
    before = after = 0.0
    with bar_context(transient=True) if progress else contextlib.nullcontext() as bar:
        task = bar.add_task(f"AdaRound{' (blocks)' if blocks else ''}: int8 weights", total=len(groups)) \
            if progress else None
        for block, members in groups:
            layers = [found[i] for i in members]
            if blocks:
                x = _block_io(working, block, data, output=False)  # what the rounded blocks before feed it
                target = _block_io(model, block, data, output=True)  # the FP32 block's output on FP32 inputs
            else:  # a layer alone: its FP32 inputs and outputs
                x = inputs[id(modules[block])]
                with torch.no_grad():
                    target = modules[block](x)
            module = dict(working.named_modules())[block]
            keys = ["weight" if t.name == block else f"{t.name[len(block) + 1:]}.weight" for t in layers]
            hard, mse = _round_block(module, layers, keys, x, target, iterations, lam, generator)
            for t, q in zip(layers, hard):
                nearest = torch.round(t.w / t.s).clamp(t.qmin, 127)
                total += q.numel()
                flipped += int((q != nearest).sum())
                dict(working.named_modules())[t.name].weight.copy_(t.s * q)
                value = (q.T if t.transposed else q).numpy().astype(np.int8)
                t.tensor.CopyFrom(numpy_helper.from_array(value, t.tensor.name))
            before, after = before + mse[0], after + mse[1]
            if progress:
                bar.update(task, advance=1)
    return qdq, AdaRoundStats(len(found), total, flipped, before, after)


@dataclasses.dataclass
class _Target:
    """One int8 weight of the graph and the PyTorch layer it came from, in the layer's own layout."""

    tensor: Any  # the graph's int8 initializer
    name: str  # the layer's name in the model
    w: torch.Tensor
    s: torch.Tensor
    transposed: bool
    qmin: int


def _targets_of(inits: dict[str, Any], model: torch.nn.Module, targets: list[Any]) -> list[_Target]:
    from onnx import numpy_helper

    names = {id(m): n for n, m in model.named_modules()}
    found = []
    for _node, dq, layer in targets:
        q = numpy_helper.to_array(inits[dq.input[0]])
        scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
        zero = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] in inits else 0
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if q.dtype != np.int8 or np.any(zero != 0) or tuple(q.shape) not in (tuple(layer.weight.shape),
                                                                          tuple(layer.weight.shape[::-1])):
            continue
        transposed = tuple(q.shape) != tuple(layer.weight.shape)
        s = torch.from_numpy(_broadcast(scale, axis, q.ndim))
        if transposed:  # the scale in the layer's own layout
            s = s.T
        found.append(_Target(inits[dq.input[0]], names[id(layer)], layer.weight.detach().clone(), s, transposed,
                             -127 if q.min() >= -127 else -128))
    return found


def _group_blocks(names: list[str], max_layers: int) -> list[tuple[str, list[int]]]:
    """(block name, indices of its layers) in the layers' order: each layer's shortest enclosing sub-module
    holding at most ``max_layers`` of them, or the layer alone."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        parts, block = name.split("."), name
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if sum(n == prefix or n.startswith(prefix + ".") for n in names) <= max_layers:
                block = prefix
                break
        groups.setdefault(block, []).append(i)
    return list(groups.items())


class _Stop(Exception):
    pass


def _batch_step(model: torch.nn.Module, data: torch.Tensor) -> int:
    """Rows per forward: 16, or 1 for a model exported for a fixed batch (its guard rejects others)."""
    if len(data) < 2:
        return 1
    try:
        with torch.no_grad():
            model(data[:2])
        return 16
    except Exception:  # torch.export's "Guard failed: input.size()[0] == 1", or a shape error
        return 1


def _block_io(model: torch.nn.Module, block: str, data: torch.Tensor, *, output: bool) -> torch.Tensor:
    """The input (or output) of sub-module ``block`` of ``model`` on ``data``; the forward stops there."""
    module = dict(model.named_modules())[block]
    seen: list[torch.Tensor] = []

    def grab(mod: Any, args: Any, out: Any = None) -> None:
        value = out if output else args[0]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"block {block}: a tensor {'output' if output else 'input'}, got {type(value).__name__}")
        seen.append(value.detach())
        raise _Stop

    step = _batch_step(model, data)
    hook = module.register_forward_hook(grab) if output else module.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            for i in range(0, len(data), step):
                with contextlib.suppress(_Stop):
                    model(data[i:i + step])
    finally:
        hook.remove()
    return torch.cat(seen)


def _round_block(block: torch.nn.Module, layers: list[_Target], keys: list[str], x: torch.Tensor,
                 target: torch.Tensor, iterations: int, lam: float,
                 generator: torch.Generator) -> tuple[list[torch.Tensor], tuple[float, float]]:
    """Learn the rounding of every layer of ``block`` together; the chosen int8 values and the block's output MSE
    (nearest, chosen) on all of ``x``."""
    from torch.func import functional_call

    floors = [torch.floor(t.w / t.s) for t in layers]
    vs = []
    for t, f in zip(layers, floors):
        rest = (t.w / t.s - f).clamp(1e-4, 1 - 1e-4)
        vs.append((-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)).requires_grad_(True))
    opt = torch.optim.Adam(vs, lr=1e-2)

    def h(v: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)

    def run(weights: list[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        out = functional_call(block, dict(zip(keys, weights)), (rows,))
        return out.reshape(out.shape[0], -1)

    flat_target = target.reshape(target.shape[0], -1)
    warmup = int(0.2 * iterations)
    batch = min(16, x.shape[0])
    for step in range(iterations):
        idx = torch.randint(0, x.shape[0], (batch,), generator=generator)
        soft = [t.s * (f + h(v)).clamp(t.qmin, 127) for t, f, v in zip(layers, floors, vs)]
        loss = (run(soft, x[idx]) - flat_target[idx]).pow(2).sum(1).mean()
        if step >= warmup:
            beta = 2 + (20 - 2) * (1 - (step - warmup) / max(1, iterations - warmup))  # 20 -> 2
            loss = loss + lam * sum((1 - (2 * h(v) - 1).abs().pow(beta)).sum() for v in vs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        hard = [(f + (h(v) >= 0.5).float()).clamp(t.qmin, 127) for t, f, v in zip(layers, floors, vs)]
        nearest = [torch.round(t.w / t.s).clamp(t.qmin, 127) for t in layers]
        mse = tuple(float((run([t.s * q for t, q in zip(layers, qs)], x) - flat_target).pow(2).mean())
                    for qs in (nearest, hard))
    return (hard if mse[1] <= mse[0] else nearest), (mse[0], min(mse))


def _layer_inputs(model: torch.nn.Module, layers: list[torch.nn.Module], data: torch.Tensor
                  ) -> dict[int, torch.Tensor]:
    """Each layer's FP32 input on ``data``, all of them in one pass."""
    step = _batch_step(model, data)
    seen: dict[int, list[torch.Tensor]] = {id(m): [] for m in layers}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen[id(mod)].append(args[0].detach())) for m in layers]
    try:
        with torch.no_grad():
            for i in range(0, len(data), step):
                model(data[i:i + step])
    finally:
        for hook in hooks:
            hook.remove()
    return {k: torch.cat(v) for k, v in seen.items() if v}


def _broadcast(scale: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    if scale.ndim == 0:
        return scale.reshape((1,) * ndim)
    shape = [1] * ndim
    shape[axis if axis >= 0 else ndim + axis] = scale.size
    return scale.reshape(shape)


def _copy(model: Any) -> Any:
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


__all__ = ["AdaRoundStats", "adaround_qdq"]
