"""Per-layer sensitivity: how much the model's output moves when only one layer is quantized."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from .qat import QATConfig, _QATMixin, calibrate, fake_quantizers


@dataclasses.dataclass(frozen=True)
class LayerSensitivity:
    """One layer quantized alone: KL(fp32 ‖ quantized) of the outputs' softmax, and output SQNR in dB."""

    name: str
    kl: float
    sqnr_db: float


def layer_sensitivity(model: torch.nn.Module, batches: Sequence[torch.Tensor], config: QATConfig | None = None) -> list[LayerSensitivity]:
    """Rank the Conv/Linear layers of ``model`` from most to least sensitive to quantization (``config``).

    ``batches`` calibrate the ranges and are the inputs the outputs are compared on.
    """
    ref, q = calibrated_copy(model, batches, config or QATConfig())
    quantizers = [fq for _, fq in fake_quantizers(q)]
    layers = [(n, m) for n, m in q.named_modules() if isinstance(m, _QATMixin)]
    out = []
    for name, layer in layers:
        for fq in quantizers:
            fq.enabled = False
        layer.weight_fq.enabled = layer.input_fq.enabled = True
        with torch.no_grad():
            got = torch.cat([q(b) for b in batches])
        out.append(LayerSensitivity(name, output_kl(ref, got), sqnr_db(ref, got)))
    return sorted(out, key=lambda s: -s.kl)


def calibrated_copy(model: torch.nn.Module, batches: Sequence[torch.Tensor], config: QATConfig
                    ) -> tuple[torch.Tensor, torch.nn.Module]:
    """(``model``'s outputs on ``batches`` in eval mode, a fake-quantized copy calibrated on them, its ranges
    frozen)."""
    model.eval()
    with torch.no_grad():
        ref = torch.cat([model(b) for b in batches])
    q = config.apply(copy.deepcopy(model))
    calibrate(q, batches)
    for _, fq in fake_quantizers(q):
        fq.observe = False
    return ref, q


def output_kl(ref: torch.Tensor, got: torch.Tensor) -> float:
    """Mean KL divergence between the softmax of reference and quantized logits (last dimension)."""
    p = ref.float().softmax(-1)
    return float((p * (p.clamp_min(1e-12).log() - got.float().log_softmax(-1))).sum(-1).mean())


def sqnr_db(ref: torch.Tensor, got: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of ``got`` against ``ref`` in dB (higher is better)."""
    ref, got = ref.detach().float(), got.detach().float()
    noise = (ref - got).pow(2).mean()
    if float(noise) == 0:
        return float("inf")
    return float(10 * torch.log10(ref.float().pow(2).mean() / noise))


def as_batches(data: Any, batch_size: int = 16) -> list[torch.Tensor]:
    """A tensor, or an iterable of tensors / (inputs, labels) pairs → a list of input batches.

    A tensor is split into batches of one size — the largest that divides its rows and is at most ``batch_size`` —
    because ONNX Runtime's histogram calibrators (percentile, entropy) stack every batch's activations and fail on a
    short last one."""
    if isinstance(data, torch.Tensor):
        rows = data.shape[0] if data.dim() else 0
        size = next((k for k in range(min(batch_size, rows), 0, -1) if rows % k == 0), 1)
        return [data[i: i + size] for i in range(0, rows, size)]
    return [b[0] if isinstance(b, (list, tuple)) else b for b in data]
