"""Gradient compression on the wire: PyTorch's DDP communication hooks, wrapped to count what each all-reduce sends,
and a 2-bit hook of our own (stochastic rounding, a scale per bucket, error feedback; codes all-gathered)."""


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
    bytes_internode: int = 0  # of which handed to collectives that span machines (hierarchical: leaders only)
    spans_nodes: bool = False  # flat hooks: every collective spans machines when the job has several

    def add(self, numel: int, element_size: int) -> None:
        self.bytes_allreduced += numel * element_size
        self.calls += 1
        if self.spans_nodes:
            self.bytes_internode += numel * element_size


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


@dataclasses.dataclass
class _TwoBitState:
    process_group: Any
    stats: CommStats
    generator: torch.Generator
    residuals: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)  # error feedback per bucket


def quantize_2bit(values: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic 2-bit codes of ``values`` (float32, 1-D) on the levels {-1, -1/3, 1/3, 1} x max|values|, packed
    four to a byte, and that scale (a float32 tensor of one element). Unbiased: E[dequantize] = values."""
    scale = values.abs().max().clamp_min(torch.finfo(torch.float32).tiny).reshape(1)
    position = (values / scale + 1.0) * 1.5  # in [0, 3]
    low = position.floor()
    codes = (low + (torch.rand(position.shape, generator=generator) < position - low)).clamp_(0, 3).to(torch.uint8)
    pad = (-codes.numel()) % 4
    if pad:
        codes = torch.cat([codes, codes.new_zeros(pad)])
    quads = codes.reshape(-1, 4)
    packed = quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)
    return packed, scale


def dequantize_2bit(packed: torch.Tensor, scale: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of :func:`quantize_2bit` (float32, ``numel`` values)."""
    codes = torch.stack([(packed >> shift) & 3 for shift in (0, 2, 4, 6)], dim=1).reshape(-1)[:numel]
    return (codes.to(torch.float32) / 1.5 - 1.0) * scale


def _two_bit_hook(state: _TwoBitState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """2-bit gradients with error feedback: each process quantizes (its gradient + the error it made last time),
    keeps the new error, all-gathers the packed codes and scales, and decodes the mean of every process's codes."""
    buffer = bucket.buffer()
    index = bucket.index()
    values = buffer.detach().to(torch.float32)
    residual = state.residuals.get(index)
    if residual is not None and residual.shape == values.shape:  # DDP may rebuild its buckets after step one
        values = values + residual
    packed, scale = quantize_2bit(values, state.generator)
    state.residuals[index] = values - dequantize_2bit(packed, scale, values.numel())
    group = state.process_group
    world = dist.get_world_size(group)
    payload = torch.cat([scale.view(torch.uint8), packed])  # one message: the scale's 4 bytes, then the codes
    state.stats.add(payload.numel(), 1)
    gathered = [torch.empty_like(payload) for _ in range(world)]
    work = dist.all_gather(gathered, payload, group=group, async_op=True)

    def decode(_: Any) -> torch.Tensor:
        total = torch.zeros_like(values)
        for message in gathered:
            total += dequantize_2bit(message[4:], message[:4].view(torch.float32), values.numel())
        buffer.copy_((total / world).to(buffer.dtype))
        return buffer

    return work.get_future().then(decode)


def register_compression(ddp_model: torch.nn.parallel.DistributedDataParallel, compression: str | None, *,
                         process_group: Any = None, powersgd_rank: int = 2, powersgd_start_step: int = 10,
                         seed: int = 0, spans_nodes: bool = False) -> CommStats:
    """Install the gradient all-reduce for ``compression`` (None, "fp16", "bf16", "powersgd" or "2bit") on a DDP
    model and return the :class:`CommStats` it fills."""
    stats = CommStats(compression, spans_nodes=spans_nodes)
    if compression == "2bit":
        rank = dist.get_rank(process_group) if process_group is not None else dist.get_rank()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + rank)  # independent rounding per process
        ddp_model.register_comm_hook(_TwoBitState(process_group, stats, generator), _two_bit_hook)
        return stats
    if compression == "powersgd":
        state = powerSGD_hook.PowerSGDState(process_group=process_group, matrix_approximation_rank=powersgd_rank,
                                            start_powerSGD_iter=powersgd_start_step, random_seed=seed)
        ddp_model.register_comm_hook(_PowerSGDCounted(state, stats), _counted_powersgd)
        return stats
    wrappers = {"fp16": default_hooks.fp16_compress_wrapper, "bf16": default_hooks.bf16_compress_wrapper}
    hook = wrappers[compression](_counted_allreduce) if compression in wrappers else _counted_allreduce
    ddp_model.register_comm_hook(_HookState(process_group, stats), hook)
    return stats
