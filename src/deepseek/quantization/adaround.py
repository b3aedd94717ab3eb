"""AdaRound (Nagel et al., ICML 2020) for the int8 weights of a QDQ ONNX model: each weight is rounded up or down —
not to nearest — so that its layer's output on real calibration inputs stays closest to FP32.

For every Conv / Gemm / MatMul whose weight ONNX Runtime quantized to int8 (per output channel, its scale in the
graph), a soft rounding variable ``h(V)`` in [0, 1] (the rectified sigmoid) is learned per weight to minimise
``||layer(x; s * (floor(W / s) + h(V))) - layer(x; W)||^2`` over the layer's FP32 inputs ``x``, plus a regulariser
``lambda * sum(1 - |2h - 1|^beta)`` (beta annealed 20 -> 2) that drives every ``h`` to 0 or 1. The int8 values
``floor(W / s) + round(h)`` then replace the graph's own: the scales, zero points and everything else ONNX Runtime
chose stay as they are, so the model runs exactly as before, with better-rounded weights.
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
                 progress: bool = True) -> tuple[Any, AdaRoundStats]:
    """A copy of ``qdq`` (an ONNX ModelProto) with AdaRound's int8 weights; ``model`` is the PyTorch module it was
    exported from (BatchNorm folded, as exported) and ``scopes`` maps its ONNX nodes to the module's layers."""
    from onnx import numpy_helper

    from .._progress import progress as bar_context

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
    inputs = _layer_inputs(model, [t[2] for t in targets], batches, samples)
    generator = torch.Generator().manual_seed(seed)
    total = flipped = 0
    before = after = 0.0
    with bar_context(transient=True) if progress else contextlib.nullcontext() as bar:
        task = bar.add_task("AdaRound: int8 weights", total=len(targets)) if progress else None
        for _node, dq, layer in targets:
            q_tensor = inits[dq.input[0]]
            q = numpy_helper.to_array(q_tensor)
            scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
            zero = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] in inits else 0
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
            if q.dtype != np.int8 or np.any(zero != 0) or tuple(q.shape) not in (tuple(layer.weight.shape),
                                                                              tuple(layer.weight.shape[::-1])):
                continue
            transposed = tuple(q.shape) != tuple(layer.weight.shape)
            qmin = -127 if q.min() >= -127 else -128
            s = _broadcast(scale, axis, q.ndim)
            w = layer.weight.detach().numpy()
            w = w.T if transposed else w
            new_q, mse = _round(layer, torch.from_numpy(w), torch.from_numpy(s), inputs[id(layer)], transposed,
                                qmin, iterations, lam, generator)
            total += q.size
            flipped += int((new_q != np.clip(np.round(w / s), qmin, 127)).sum())
            before, after = before + mse[0], after + mse[1]
            q_tensor.CopyFrom(numpy_helper.from_array(new_q.astype(np.int8), q_tensor.name))
            if progress:
                bar.update(task, advance=1)
    return qdq, AdaRoundStats(len(targets), total, flipped, before, after)


def _round(layer: torch.nn.Module, w: torch.Tensor, s: torch.Tensor, x: torch.Tensor, transposed: bool, qmin: int,
           iterations: int, lam: float, generator: torch.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """Learn the rounding of one layer's weight; the int8 values and the output MSE (nearest, AdaRound)."""
    w_floor = torch.floor(w / s)
    rest = (w / s - w_floor).clamp(1e-4, 1 - 1e-4)
    v = (-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)).requires_grad_(True)  # h(v) == rest at the start
    opt = torch.optim.Adam([v], lr=1e-2)
    with torch.no_grad():
        target = _apply(layer, w, x, transposed)

    def h() -> torch.Tensor:
        return (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)

    warmup = int(0.2 * iterations)
    batch = min(16, x.shape[0])
    for step in range(iterations):
        idx = torch.randint(0, x.shape[0], (batch,), generator=generator)
        soft = s * (w_floor + h()).clamp(qmin, 127)
        loss = (_apply(layer, soft, x[idx], transposed) - target[idx]).pow(2).sum(1).mean()
        if step >= warmup:
            beta = 2 + (20 - 2) * (1 - (step - warmup) / max(1, iterations - warmup))  # 20 -> 2
            loss = loss + lam * (1 - (2 * h() - 1).abs().pow(beta)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        hard = (w_floor + (h() >= 0.5).float()).clamp(qmin, 127)
        nearest = torch.round(w / s).clamp(qmin, 127)
        mse = tuple(float((_apply(layer, s * q, x, transposed) - target).pow(2).mean()) for q in (nearest, hard))
        # AdaRound may lose to nearest on a layer where the inputs seen are too few: keep the better of the two
        chosen = hard if mse[1] <= mse[0] else nearest
    return chosen.numpy(), (mse[0], min(mse))


def _apply(layer: torch.nn.Module, weight: torch.Tensor, x: torch.Tensor, transposed: bool) -> torch.Tensor:
    """``layer`` on ``x`` with ``weight`` instead of its own, flattened per sample."""
    w = weight.T if transposed else weight
    if isinstance(layer, torch.nn.Linear):
        y = torch.nn.functional.linear(x, w, layer.bias)
    else:
        y = layer._conv_forward(x, w, layer.bias)
    return y.reshape(y.shape[0], -1)


def _layer_inputs(model: torch.nn.Module, layers: list[torch.nn.Module], batches: list[torch.Tensor],
                  samples: int) -> dict[int, torch.Tensor]:
    """Each layer's FP32 input on the first ``samples`` calibration samples."""
    data = torch.cat(batches)[:samples]
    seen: dict[int, list[torch.Tensor]] = {id(m): [] for m in layers}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen[id(mod)].append(args[0].detach())) for m in layers]
    try:
        with torch.no_grad():
            for i in range(0, len(data), 16):
                model(data[i:i + 16])
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
