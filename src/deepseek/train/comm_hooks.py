"""Gradient compression on the wire: PyTorch's DDP communication hooks, wrapped to count what each all-reduce sends."""


import dataclasses
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook


@dataclasses.dataclass
class CommStats:
    """Bytes this process handed to all-reduce for gradients (payload only; a ring all-reduce moves about
    2·(n-1)/n times this over the network), and how many all-reduce calls carried them."""

    compression: str | None
    bytes_allreduced: int = 0
    calls: int = 0

    def add(self, numel: int, element_size: int) -> None:
        self.bytes_allreduced += numel * element_size
        self.calls += 1


@dataclasses.dataclass
class _HookState:
    process_group: Any
    stats: CommStats


def _counted_allreduce(state: _HookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """All-reduce the bucket as it arrives (already cast to fp16/bf16 by a compression wrapper), counting it."""
    buffer = bucket.buffer()
    state.stats.add(buffer.numel(), buffer.element_size())
    return default_hooks.allreduce_hook(state.process_group, bucket)


@dataclasses.dataclass
class _PowerSGDCounted:
    powersgd: powerSGD_hook.PowerSGDState
    stats: CommStats


def _counted_powersgd(state: _PowerSGDCounted, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """PowerSGD, counted from its own bookkeeping: the elements it all-reduced after compression (P, Q and the
    tensors not worth compressing), or the whole bucket during its uncompressed warm-up."""
    inner = state.powersgd
    buffer = bucket.buffer()
    warming_up = inner.iter < inner.start_powerSGD_iter
    before = inner.total_numel_after_compression
    future = powerSGD_hook.powerSGD_hook(inner, bucket)
    numel = buffer.numel() if warming_up else inner.total_numel_after_compression - before
    state.stats.add(int(numel), buffer.element_size())
    return future


def register_compression(ddp_model: torch.nn.parallel.DistributedDataParallel, compression: str | None, *,
                         process_group: Any = None, powersgd_rank: int = 2, powersgd_start_step: int = 10,
                         seed: int = 0) -> CommStats:
    """Install the gradient all-reduce for ``compression`` (None, "fp16", "bf16" or "powersgd") on a DDP model
    and return the :class:`CommStats` it fills."""
    stats = CommStats(compression)
    if compression == "powersgd":
        state = powerSGD_hook.PowerSGDState(process_group=process_group, matrix_approximation_rank=powersgd_rank,
                                            start_powerSGD_iter=powersgd_start_step, random_seed=seed)
        ddp_model.register_comm_hook(_PowerSGDCounted(state, stats), _counted_powersgd)
        return stats
    hook: Any = _counted_allreduce
    if compression == "fp16":
        hook = default_hooks.fp16_compress_wrapper(_counted_allreduce)
    elif compression == "bf16":
        hook = default_hooks.bf16_compress_wrapper(_counted_allreduce)
    ddp_model.register_comm_hook(_HookState(process_group, stats), hook)
    return stats
