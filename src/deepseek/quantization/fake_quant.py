"""Fake quantization: quantize-dequantize in float, with straight-through gradients (STE) or learned
scales (LSQ; LSQ+ also learns the zero point of asymmetric grids)."""

from __future__ import annotations

import math

import torch

from .observers import make_observer
from .spec import QuantSpec


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize-dequantize ``x``; the gradient passes straight through inside the range and is 0 outside."""
    if spec.per_channel:
        return torch.fake_quantize_per_channel_affine(x, scale, zero_point.to(torch.int32), spec.axis, spec.qmin, spec.qmax)
    return torch.fake_quantize_per_tensor_affine(x, scale.reshape(()), zero_point.reshape(()).to(torch.int32), spec.qmin, spec.qmax)


def lsq_fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """LSQ: quantize-dequantize with gradients for ``scale`` (and a float ``zero_point``), scaled by
    1/sqrt(numel * qmax) as in Esser et al. 2020 so the step size learns at the weights' pace."""
    grad_factor = 1.0 / math.sqrt(x.numel() * max(spec.qmax, 1))
    if spec.per_channel:
        grad_factor = 1.0 / math.sqrt(x.numel() / x.shape[spec.axis] * max(spec.qmax, 1))
        return torch._fake_quantize_learnable_per_channel_affine(x, scale, zero_point, spec.axis, spec.qmin, spec.qmax, grad_factor)
    return torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, spec.qmin, spec.qmax, grad_factor)


class FakeQuantize(torch.nn.Module):
    """Observes a tensor, then fake-quantizes it on the spec's grid.

    ``learnable=True`` turns the scale (and, for asymmetric grids, the zero point: LSQ+) into parameters,
    initialised from the observer on the first batch. ``observe`` / ``enabled`` switch calibration and
    quantization on and off (e.g. freeze ranges after calibration, or compare with float).
    """

    def __init__(self, spec: QuantSpec, learnable: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.learnable = learnable
        self.observer = make_observer(spec)
        self.observe = True
        self.enabled = True
        if learnable:
            self.scale = torch.nn.Parameter(torch.tensor([]))
            self.zero_point = torch.nn.Parameter(torch.tensor([]), requires_grad=not spec.symmetric)
        else:
            self.register_buffer("scale", torch.tensor([]))
            self.register_buffer("zero_point", torch.tensor([], dtype=torch.int32))

    @property
    def initialized(self) -> bool:
        return self.scale.numel() > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe and (not self.learnable or not self.initialized):
            self.observer(x)
            self._update_qparams()
        if not self.enabled or not self.initialized:
            return x
        if self.learnable:
            return lsq_fake_quantize(x, self.scale, self.zero_point, self.spec)
        return fake_quantize(x, self.scale, self.zero_point, self.spec)

    @torch.no_grad()
    def _update_qparams(self) -> None:
        shape = -1 if self.spec.per_channel else 1
        scale, zero = (t.reshape(shape) for t in self.observer.qparams())
        if self.learnable:
            self.scale.data = scale.clone()
            self.zero_point.data = zero.float().clone()
        else:
            self.scale = scale
            self.zero_point = zero

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, integer zero point) currently in use."""
        if not self.initialized:
            raise RuntimeError("FakeQuantize has not seen data yet: calibrate first")
        zero = torch.round(self.zero_point.detach()).clamp(self.spec.qmin, self.spec.qmax).to(torch.int32)
        return self.scale.detach().abs(), zero

    def extra_repr(self) -> str:
        s = self.spec
        return (f"bits={s.bits}, {'symmetric' if s.symmetric else 'asymmetric'}, "
                f"{'per-channel(axis=' + str(s.axis) + ')' if s.per_channel else 'per-tensor'}, observer={s.observer}, "
                f"learnable={self.learnable}")
