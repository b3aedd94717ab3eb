"""DeepSeekTrainer: one training loop with mixed precision, clipping, accumulation, callbacks and exact resume."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import amp
from .._atomic import atomic_path
from .._errors import ArtifactError, invalid
from .config import PRECISIONS, DistributedConfig, OptimizerConfig

CHECKPOINT = "trainer_state.pt"


class Callback:
    """Hooks into :class:`DeepSeekTrainer`; override the ones you need (a pruning scheduler or QAT plugs in here)."""

    def before_optimizer_step(self, trainer: DeepSeekTrainer) -> None:
        """Gradients are final (unscaled, clipped); the optimizer has not stepped."""

    def on_step_end(self, trainer: DeepSeekTrainer, metrics: dict[str, float]) -> None:
        """After an optimizer step; ``metrics`` holds the step's loss."""

    def on_epoch_end(self, trainer: DeepSeekTrainer, metrics: dict[str, float]) -> None:
        """After an epoch (and its evaluation, when eval data was given)."""


class DeepSeekTrainer:
    """Train ``model`` on labeled batches: optimizer and schedule from ``optimizer_config``, gradient accumulation
    and sync BatchNorm from ``distributed_config``, mixed precision from ``precision`` (``"auto"`` picks what
    the device runs fastest), atomic checkpoints in ``checkpoint_path`` from which ``fit`` resumes exactly
    (model, optimizer, scheduler, scaler, data order and RNG states).
    """

    def __init__(self, model: torch.nn.Module, optimizer_config: dict[str, Any] | OptimizerConfig | None = None,
                 distributed_config: dict[str, Any] | DistributedConfig | None = None, *,
                 loss_fn: Callable[[Any, Any], torch.Tensor] | None = None, precision: str = "auto",
                 callbacks: Iterable[Callback] = (), checkpoint_path: str | Path | None = None,
                 checkpoint_every: int | None = None, batch_size: int = 64, seed: int = 0,
                 activation_checkpointing: Iterable[str] = (), device: str = "cpu", progress: bool = True) -> None:
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        if precision not in PRECISIONS:
            raise invalid("precision", precision, f"one of {PRECISIONS}")
        if batch_size < 1:
            raise invalid("batch_size", batch_size, "an integer >= 1")
        if checkpoint_every is not None and checkpoint_every < 1:
            raise invalid("checkpoint_every", checkpoint_every, "optimizer steps >= 1, or None (every epoch)")
        self.optim = OptimizerConfig.parse(optimizer_config)
        self.dist = DistributedConfig.parse(distributed_config)
        self.device = device
        self.model = model.to(device)
        if self.dist.sync_bn and torch.distributed.is_available() and torch.distributed.is_initialized():
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if activation_checkpointing:
            from ..graph import checkpoint_activations

            checkpoint_activations(self.model, list(activation_checkpointing))
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self.dtype = {"auto": None, "fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}[precision]
        self.scaler = amp.GradScaler(device, dtype=self.dtype)
        self.optimizer = _optimizer(self.model, self.optim)
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = checkpoint_every
        self.batch_size, self.seed, self.progress = batch_size, seed, progress
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # micro-batches consumed in the current epoch
        self.history: list[dict[str, float]] = []
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    # -- public -------------------------------------------------------------------------------------------
    def fit(self, train_data: Any, epochs: int, eval_data: Any = None, *, resume: bool = True) -> list[dict[str, float]]:
        """Train for ``epochs`` (counting epochs already done when resuming from ``checkpoint_path``)."""
        if not (isinstance(epochs, int) and epochs >= 1):
            raise invalid("epochs", epochs, "an integer >= 1")
        dataset = _as_dataset(train_data)
        per_epoch = math.ceil(len(dataset) / self.batch_size)
        total_steps = epochs * math.ceil(per_epoch / self.dist.gradient_accumulation)
        self.scheduler = _scheduler(self.optimizer, self.optim, total_steps)
        if resume and self.checkpoint_path is not None and (self.checkpoint_path / CHECKPOINT).is_file():
            self.load_checkpoint(self.checkpoint_path / CHECKPOINT)
        from .._progress import progress

        bar = progress(transient=True) if self.progress else contextlib.nullcontext()
        with bar:
            task = bar.add_task("training", total=epochs * per_epoch, completed=self.epoch * per_epoch
                                + self.batch_in_epoch) if self.progress else None
            while self.epoch < epochs:
                self._train_epoch(dataset, per_epoch, bar, task)
                metrics = {"epoch": float(self.epoch), "step": float(self.step)}
                if eval_data is not None:
                    metrics.update(self.evaluate(eval_data))
                self.history.append(metrics)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, metrics)
                if self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path / CHECKPOINT)
        return self.history

    def evaluate(self, data: Any) -> dict[str, float]:
        """Mean loss and top-1 accuracy on ``data`` (eval mode; BatchNorm uses running statistics)."""
        dataset = _as_dataset(data)
        self.model.eval()
        total, loss_sum, correct = 0, 0.0, 0
        with torch.no_grad(), amp.autocast(self.device, dtype=self.dtype):
            for x, y in torch.utils.data.DataLoader(dataset, batch_size=max(256, self.batch_size)):
                x, y = x.to(self.device), y.to(self.device)
                out = self.model(x)
                loss_sum += float(self.loss_fn(out.float(), y)) * len(y)
                correct += int((out.argmax(-1) == y).sum())
                total += len(y)
        self.model.train()
        return {"eval_loss": loss_sum / total, "eval_accuracy": correct / total}

    def save_checkpoint(self, path: str | Path) -> Path:
        """Everything needed to continue exactly here, written atomically (readable with weights_only=True)."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                 "scaler": self.scaler.state_dict(), "step": self.step, "epoch": self.epoch,
                 "batch_in_epoch": self.batch_in_epoch, "history": self.history,
                 "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                         "python_version": random.getstate()[0],
                         "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                         "numpy_pos": int(np.random.get_state()[2])}}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        return Path(path)

    def load_checkpoint(self, path: str | Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:
            raise ArtifactError(f"checkpoint: {path} is not a readable trainer checkpoint ({type(e).__name__})") from e
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.history = list(state["history"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate((rng["python_version"], tuple(rng["python"]), None))
        np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))

    # -- the loop -------------------------------------------------------------------------------------------
    def _train_epoch(self, dataset: Any, per_epoch: int, bar: Any, task: Any) -> None:
        self.model.train()
        order = torch.Generator().manual_seed(self.seed + self.epoch)  # the epoch's data order, reproducible on resume
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=True, generator=order)
        accumulate = self.dist.gradient_accumulation
        for index, (x, y) in enumerate(loader):
            if index < self.batch_in_epoch:  # consumed before the checkpoint this run resumed from
                continue
            x, y = x.to(self.device), y.to(self.device)
            last_micro = (index + 1) % accumulate == 0 or index + 1 == per_epoch
            start = index // accumulate * accumulate  # the accumulation group's first micro-batch
            group_samples = min(len(dataset), min(start + accumulate, per_epoch) * self.batch_size) - start * self.batch_size
            sync = self.model.no_sync() if (not last_micro and hasattr(self.model, "no_sync")) else contextlib.nullcontext()
            with sync:
                with amp.autocast(self.device, dtype=self.dtype):
                    loss = self.loss_fn(self.model(x), y)
                # each micro-batch's mean loss weighted by its share of the group's samples: the gradient
                # equals one large batch's, even when the last micro-batch is short
                self.scaler.scale(loss * (len(y) / group_samples)).backward()
            self.batch_in_epoch = index + 1
            if bar is not None and task is not None:
                bar.advance(task)
            if last_micro:
                self._optimizer_step(float(loss.detach()))
        self.epoch += 1
        self.batch_in_epoch = 0

    def _optimizer_step(self, loss: float) -> None:
        if self.optim.clip_grad_norm is not None:
            self.scaler.clip_grad_norm_(self.model.parameters(), self.optim.clip_grad_norm, self.optimizer)
        else:
            self.scaler.unscale_(self.optimizer)
        for cb in self.callbacks:
            cb.before_optimizer_step(self)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        metrics = {"step": float(self.step), "loss": loss, "lr": self.optimizer.param_groups[0]["lr"]}
        for cb in self.callbacks:
            cb.on_step_end(self, metrics)
        if (self.checkpoint_path is not None and self.checkpoint_every is not None
                and self.step % self.checkpoint_every == 0):
            self.save_checkpoint(self.checkpoint_path / CHECKPOINT)


def _as_dataset(data: Any) -> Any:
    """A torch Dataset of (input, label) pairs from a :class:`deepseek.assets.Dataset`, a Dataset, or tensors."""
    if hasattr(data, "x") and hasattr(data, "y") and not isinstance(data, torch.utils.data.Dataset):
        return torch.utils.data.TensorDataset(data.x, data.y)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return torch.utils.data.TensorDataset(*data)
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return data
    raise invalid("data", type(data).__name__, "a deepseek.assets Dataset, a sized torch Dataset, or (inputs, labels)")


def _optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # no weight decay on biases and normalization weights (1-D parameters), as the field does
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.type == "AdamW":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.type == "Adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.type == "SGD":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig,
               total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    if cfg.scheduler is None:
        return None
    warm = cfg.warmup_steps

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        if cfg.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if cfg.scheduler == "linear":
            return max(0.0, 1 - progress)
        if cfg.scheduler == "step":
            return cfg.gamma ** ((step - warm) // cfg.step_size)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
