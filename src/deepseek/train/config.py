"""Trainer configuration: frozen, validated, built from plain dicts
(e.g. ``optimizer_config={"type": "AdamW", "lr": 1e-3}``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid

LAUNCH_ENV = "DEEPSEEK_TRAIN_CONFIG"  # JSON defaults set by `deepseek train` for the trainer in the script

OPTIMIZERS = ("AdamW", "Adam", "SGD", "RMSprop")
SCHEDULERS = (None, "cosine", "linear", "step", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STRATEGIES = ("ring_allreduce", "zero1", "fsdp", "hierarchical", "hsdp")
COMPRESSIONS = (None, "fp16", "bf16", "powersgd", "2bit")
BACKENDS = ("auto", "gloo", "nccl")
# Lightning / Accelerate / DeepSpeed names for the same strategies
STRATEGY_ALIASES = {"ddp": "ring_allreduce", "allreduce": "ring_allreduce", "zero": "zero1",
                    "deepspeed_stage_1": "zero1", "zero_stage_1": "zero1", "fsdp2": "fsdp",
                    "hierarchical_allreduce": "hierarchical", "hybrid_shard": "hsdp"}
# Lightning / Accelerate spellings that map cleanly onto ours
ALIASES = {"gradient_clip_val": "clip_grad_norm", "max_grad_norm": "clip_grad_norm", "name": "type",
           "learning_rate": "lr", "accumulate_grad_batches": "gradient_accumulation",
           "gradient_accumulation_steps": "gradient_accumulation", "sync_batchnorm": "sync_bn"}


def _canonical(data: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(key, key)
        if name in out:
            raise invalid(where, key, f"one spelling of {name!r}, not both")
        out[name] = value
    return out


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(BaseConfig):
    """Optimizer, learning-rate schedule and gradient clipping."""

    type: str = "AdamW"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD / RMSprop
    betas: tuple[float, float] = (0.9, 0.999)  # Adam / AdamW
    clip_grad_norm: float | None = None
    scheduler: str | None = None
    warmup_steps: int = 0
    step_size: int = 1000  # "step" scheduler: optimizer steps between decays
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_choice(self.type, "optimizer_config.type", OPTIMIZERS, expected=f"one of {OPTIMIZERS}")
        for name in ("lr", "weight_decay", "momentum", "gamma"):
            check_number(getattr(self, name), f"optimizer_config.{name}")
        if self.clip_grad_norm is not None and not _finite(self.clip_grad_norm):
            raise invalid("optimizer_config.clip_grad_norm", self.clip_grad_norm, "a finite positive norm, or None")
        if not (isinstance(self.betas, (tuple, list)) and len(self.betas) == 2
                and all(_finite(b) and 0 <= b < 1 for b in self.betas)):
            raise invalid("optimizer_config.betas", self.betas, "two numbers in [0, 1), e.g. (0.9, 0.999)")
        for name in ("warmup_steps", "step_size"):
            check_int(getattr(self, name), f"optimizer_config.{name}")
        check_number(self.lr, "optimizer_config.lr", above=0, expected="a positive learning rate")
        check_number(self.weight_decay, "optimizer_config.weight_decay", minimum=0, expected=">= 0")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise invalid("optimizer_config.clip_grad_norm", self.clip_grad_norm, "a positive norm, or None")
        check_choice(self.scheduler, "optimizer_config.scheduler", SCHEDULERS,
                     expected=f"one of {SCHEDULERS}")
        if self.warmup_steps < 0 or self.step_size < 1 or not 0 < self.gamma <= 1:
            raise invalid("optimizer_config", (self.warmup_steps, self.step_size, self.gamma),
                          "warmup_steps >= 0, step_size >= 1, 0 < gamma <= 1")

    @classmethod
    def parse(cls, data: dict[str, Any] | OptimizerConfig | None) -> OptimizerConfig:
        fields = _fields(cls, data, "optimizer_config", "{'type': 'AdamW', 'lr': 1e-3}")
        if isinstance(fields, cls):
            return fields
        if isinstance(fields.get("betas"), list):
            fields["betas"] = tuple(fields["betas"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class DistributedConfig(BaseConfig):
    """How steps are formed across micro-batches and processes."""

    gradient_accumulation: int = 1
    sync_bn: bool = False
    strategy: str = "ring_allreduce"  # how gradients and optimizer state are shared (DistributedTrainer)
    compression: str | None = None  # gradient compression on the wire (DDP communication hooks / FSDP reduce dtype)
    powersgd_rank: int = 2
    powersgd_start_step: int = 10  # PowerSGD all-reduces uncompressed until here (its warm-up)
    backend: str = "auto"  # "auto": NCCL when the process has a GPU, else Gloo
    processes_per_node: int | None = None  # hierarchical/hsdp node size; None: torchrun's LOCAL_WORLD_SIZE

    def __post_init__(self) -> None:
        check_int(self.gradient_accumulation, "distributed_config.gradient_accumulation", minimum=1)
        if not isinstance(self.strategy, str):
            raise invalid("strategy", self.strategy, f"one of {STRATEGIES}")
        if self.compression is not None and not isinstance(self.compression, str):
            raise invalid("compression", self.compression, f"one of {COMPRESSIONS}")
        check_flag(self.sync_bn, "distributed_config.sync_bn")
        strategy = STRATEGY_ALIASES.get(self.strategy, self.strategy)
        if strategy not in STRATEGIES:
            raise invalid("strategy", self.strategy, f"one of {STRATEGIES} (or an alias among {sorted(STRATEGY_ALIASES)})")
        object.__setattr__(self, "strategy", strategy)
        compression = None if self.compression in (None, "none") else self.compression
        check_choice(compression, "compression", COMPRESSIONS, expected=f"one of {COMPRESSIONS}")
        if compression in ("powersgd", "2bit") and strategy in ("fsdp", "hsdp"):
            raise invalid("compression", compression, f"fp16 or bf16 with strategy={strategy!r} ({compression} is a "
                          "DDP communication hook; FSDP reduce-scatters its gradients: use strategy="
                          "'ring_allreduce' or 'zero1')")
        if compression is not None and strategy == "hierarchical":
            raise invalid("compression", compression, "None with strategy='hierarchical' (its all-reduce is itself "
                          "the communication hook; use ring_allreduce for compressed gradients)")
        check_int(self.processes_per_node, "distributed_config.processes_per_node", minimum=1, optional=True)
        object.__setattr__(self, "compression", compression)
        check_int(self.powersgd_rank, "distributed_config.powersgd_rank", minimum=1)
        check_int(self.powersgd_start_step, "distributed_config.powersgd_start_step", minimum=2,
                  expected="an integer >= 2 (PowerSGD needs uncompressed warm-up steps)")
        check_choice(self.backend, "distributed_config.backend", BACKENDS, expected=f"one of {BACKENDS}")

    @classmethod
    def parse(cls, data: dict[str, Any] | DistributedConfig | None) -> DistributedConfig:
        fields = _fields(cls, data, "distributed_config", "{'gradient_accumulation': 4}")
        return fields if isinstance(fields, cls) else cls(**fields)


def _finite(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fields(cls: type, data: Any, where: str, example: str) -> Any:
    """``data`` itself when it is already a ``cls``; else its keys, aliases resolved and checked."""
    if isinstance(data, cls):
        return data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise invalid(where, data, f"a dict such as {example}")
    fields = _canonical(data, where)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = set(fields) - set(known)
    if unknown:
        raise invalid(where, sorted(unknown), f"keys among {known}")
    return fields
