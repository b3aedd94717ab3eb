"""Synchronized BatchNorm that also runs on CPUs (PyTorch's ``SyncBatchNorm`` accepts only accelerator tensors).

In training mode the batch statistics are computed over the samples of every process in the group, with
differentiable all-reduces, so N processes with B samples each normalize exactly as one process with N·B.
In eval mode it is a plain BatchNorm on the running statistics (no communication).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


class _AllReduceSum(torch.autograd.Function):
    """Sum over the group; the gradient of every input is the sum of the outputs' gradients over the group."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class SyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the whole process group's batch, for inputs on any device."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, **factory: Any) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, **factory)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        group = self.process_group or dist.group.WORLD
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # statistics in float32 at least (float16/bfloat16 inputs under autocast), float64 kept
        x = input if input.dtype == torch.float64 else input.float()
        local_count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        # two passes (mean, then squared deviations): as exact as single-process BatchNorm
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), local_count]), group)
        count = stats[-1]
        mean = stats[:-1] / count
        centered = x - mean.reshape(shape)
        var = _AllReduceSum.apply((centered * centered).sum(dims), group) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1)).clamp(min=0) if float(count) > 1 else var
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), momentum)
        out = centered * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out.to(input.dtype)


def convert_sync_batchnorm(module: torch.nn.Module, process_group: Any = None) -> torch.nn.Module:
    """Replace every BatchNorm*d in ``module`` by a synchronized one: PyTorch's fused kernel on GPUs, this
    module's :class:`SyncBatchNorm` elsewhere. Weights, buffers and train/eval mode are kept."""
    device = next((t.device for t in module.parameters()), torch.device("cpu"))
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    return _convert(module, process_group)


def _convert(module: torch.nn.Module, process_group: Any) -> torch.nn.Module:
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats, process_group)
        if module.affine:
            with torch.no_grad():
                sync.weight = module.weight
                sync.bias = module.bias
        if module.track_running_stats:
            sync.running_mean = module.running_mean
            sync.running_var = module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        module.add_module(name, _convert(child, process_group))
    return module


__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]
