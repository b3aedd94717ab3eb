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

from .._core.atomic import atomic_path
from .._core.checks import check_choice, check_flag, check_int
from .._core.errors import ArtifactError, invalid
from . import amp
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
                 activation_checkpointing: Iterable[str] = (), device: str = "cpu", progress: bool = True,
                 incremental_checkpoints: bool = False) -> None:
        self._configure(optimizer_config, distributed_config, loss_fn=loss_fn, precision=precision,
                        callbacks=callbacks, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every,
                        batch_size=batch_size, seed=seed, activation_checkpointing=activation_checkpointing,
                        device=device, progress=progress)
        check_flag(incremental_checkpoints, "incremental_checkpoints")
        # checkpoints as an IncrementalCheckpointer store in checkpoint_path (only what changed is written)
        self.incremental_checkpoints = incremental_checkpoints
        self._attach(model)

    def _configure(self, optimizer_config: Any, distributed_config: Any, *, loss_fn: Any, precision: str,
                   callbacks: Iterable[Callback], checkpoint_path: str | Path | None, checkpoint_every: int | None,
                   batch_size: int, seed: int, activation_checkpointing: Iterable[str], device: str,
                   progress: bool) -> None:
        check_choice(precision, "precision", PRECISIONS, expected=f"one of {PRECISIONS}")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1, optional=True,
                                     expected="optimizer steps >= 1, or None (every epoch)")
        seed = check_int(seed, "seed", minimum=0)
        if not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda", "mps", "xpu"):
            raise invalid("device", device, "'cpu' or 'cuda' (or 'cuda:N')")
        if loss_fn is not None and not callable(loss_fn):
            raise invalid("loss_fn", type(loss_fn).__name__, "a callable (outputs, targets) -> loss, or None")
        check_flag(progress, "progress")
        if isinstance(activation_checkpointing, str) or not all(
                isinstance(n, str) for n in activation_checkpointing):
            raise invalid("activation_checkpointing", activation_checkpointing, "a list of module names")
        callbacks = list(callbacks)
        hooks = ("before_optimizer_step", "on_step_end", "on_epoch_end")
        for cb in callbacks:
            if not isinstance(cb, Callback) and not any(callable(getattr(cb, h, None)) for h in hooks):
                raise invalid("callbacks", type(cb).__name__, "deepseek.train.Callback instances")
        if checkpoint_path is not None:
            from .._core.atomic import check_output

            if not isinstance(checkpoint_path, (str, Path)):
                raise invalid("checkpoint_path", checkpoint_path, "a folder path, or None")
            # a file in the way or an unwritable place is refused now, not at the first checkpoint
            check_output(checkpoint_path, argument="checkpoint_path", folder=True)
        self.optim = OptimizerConfig.parse(optimizer_config)
        self.dist = DistributedConfig.parse(distributed_config)
        self.device = device
        self.activation_checkpointing = list(activation_checkpointing)
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self.dtype = {"auto": None, "fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}[precision]
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = checkpoint_every
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = 0, 1  # this process's place among the processes sharing each step
        self.progress = progress
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # micro-batches consumed in the current epoch
        self.history: list[dict[str, float]] = []
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def _attach(self, model: torch.nn.Module) -> None:
        self.model = self._prepare(model)
        self.optimizer = _optimizer(self.model, self.optim)

    def _prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the device with sync BatchNorm and activation checkpointing as configured; the scaler."""
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        model = model.to(self.device)
        if self.dist.sync_bn and torch.distributed.is_available() and torch.distributed.is_initialized():
            from .sync_bn import convert_sync_batchnorm

            model = convert_sync_batchnorm(model)
        if self.activation_checkpointing:
            from ..graph import checkpoint_activations

            checkpoint_activations(model, self.activation_checkpointing)
        self.scaler = amp.GradScaler(self.device, dtype=self.dtype)
        return model

    # -- public -------------------------------------------------------------------------------------------
    def fit(self, train_data: Any, epochs: int, eval_data: Any = None, *, resume: bool = True) -> list[dict[str, float]]:
        """Train for ``epochs`` (counting epochs already done when resuming from ``checkpoint_path``)."""
        check_int(epochs, "epochs", minimum=1)
        dataset = _as_dataset(train_data)
        per_epoch = len(self._epoch_plan(len(dataset)))
        total_steps = epochs * math.ceil(per_epoch / self.dist.gradient_accumulation)
        self.scheduler = _scheduler(self.optimizer, self.optim, total_steps)
        if resume and self.checkpoint_path is not None:
            self._resume()
        from .._core.progress import progress

        show = self.progress and self.rank == 0
        bar = progress(transient=True) if show else contextlib.nullcontext()
        with bar:
            task = bar.add_task("training", total=epochs * per_epoch, completed=self.epoch * per_epoch
                                + self.batch_in_epoch) if show else None
            while self.epoch < epochs:
                self._train_epoch(dataset, bar, task)
                metrics = {"epoch": float(self.epoch), "step": float(self.step)}
                if eval_data is not None:
                    metrics.update(self.evaluate(eval_data))
                self.history.append(metrics)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, metrics)
                if self.checkpoint_path is not None:
                    self._checkpoint()
        self._finish()
        return self.history

    def evaluate(self, data: Any) -> dict[str, float]:
        """Mean loss and top-1 accuracy on ``data`` (eval mode; BatchNorm uses running statistics)."""
        dataset = _as_dataset(data)
        if len(dataset) < self.world_size:
            raise invalid("eval_data", f"{len(dataset)} samples", f"at least one per process ({self.world_size})")
        # every process evaluates its own slice in the same number of batches (sharded models need that)
        mine = torch.tensor_split(torch.arange(len(dataset)), self.world_size)[self.rank]
        batches = math.ceil(math.ceil(len(dataset) / self.world_size) / max(256, self.batch_size))
        model = self._eval_model()
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)  # samples, loss sum, correct
        with torch.no_grad(), amp.autocast(self.device, dtype=self.dtype):
            for index in torch.tensor_split(mine, min(batches, len(mine))):
                x, y = torch.utils.data.default_collate([dataset[i] for i in index.tolist()])
                x, y = x.to(self.device), y.to(self.device)
                out = model(x)
                sums += torch.tensor([len(y), float(self.loss_fn(out.float(), y)) * len(y),
                                      int((out.argmax(-1) == y).sum())], dtype=torch.float64)
        model.train()
        total, loss_sum, correct = self._sum_over_processes(sums).tolist()
        return {"eval_loss": loss_sum / total, "eval_accuracy": correct / total}

    def _full_state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                **self._progress_state(), "rng": capture_rng()}

    def save_checkpoint(self, path: str | Path) -> Path:
        """Everything needed to continue exactly here, written atomically (readable with weights_only=True)."""
        with atomic_path(path) as tmp:
            torch.save(self._full_state(), tmp)
        return Path(path)

    def load_checkpoint(self, path: str | Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:
            raise ArtifactError(f"checkpoint: {path} is not a readable trainer checkpoint ({type(e).__name__})") from e
        self._load_state(state)

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_progress(state)
        restore_rng(state["rng"])

    def _progress_state(self) -> dict[str, Any]:
        """Where the run is: counters, history, schedule and loss scale (no model or optimizer)."""
        return {"scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                "scaler": self.scaler.state_dict(), "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "history": self.history}

    def _restore_progress(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.history = list(state["history"])

    # -- the loop -------------------------------------------------------------------------------------------
    def _epoch_plan(self, samples: int) -> list[tuple[list[int], int]]:
        """This process's micro-batches for the current epoch, each with the number of samples its whole
        accumulation group holds across all processes.

        The epoch's order is one permutation (seeded by seed + epoch, so a resumed run sees the same data);
        each micro-step takes the next ``batch_size * world_size`` samples and every process its contiguous
        share, so N processes with ``batch_size`` B see exactly the batches one process with N·B sees.
        """
        order = torch.randperm(samples, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        steps = list(torch.split(order, self.batch_size * self.world_size))
        if self.world_size > 1 and steps and len(steps[-1]) < self.world_size:
            steps.pop()  # too few samples left to give every process one: dropped (at most world_size - 1)
        plan = []
        accumulate = self.dist.gradient_accumulation
        for first in range(0, len(steps), accumulate):
            group = steps[first:first + accumulate]
            total = sum(len(step) for step in group)
            plan += [(torch.tensor_split(step, self.world_size)[self.rank].tolist(), total) for step in group]
        return plan

    def _train_epoch(self, dataset: Any, bar: Any, task: Any) -> None:
        self.model.train()
        plan = self._epoch_plan(len(dataset))
        # micro-batches before batch_in_epoch were consumed before the checkpoint this run resumed from
        # (its own generator: a DataLoader draws a worker seed from the global RNG otherwise, which a resumed
        # run would then draw at a different point)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=[idx for idx, _ in plan[self.batch_in_epoch:]],
                                             generator=torch.Generator().manual_seed(self.seed + self.epoch))
        accumulate = self.dist.gradient_accumulation
        for x, y in loader:
            index = self.batch_in_epoch
            x, y = x.to(self.device), y.to(self.device)
            last_micro = (index + 1) % accumulate == 0 or index + 1 == len(plan)
            with self._gradient_sync(last_micro):
                with amp.autocast(self.device, dtype=self.dtype):
                    loss = self.loss_fn(self.model(x), y)
                # each micro-batch's mean loss weighted by its share of the group's samples (times the process
                # count, which the gradient all-reduce averages over): the gradient equals one large batch's,
                # even when the last micro-batch is short
                self.scaler.scale(loss * (len(y) * self.world_size / plan[index][1])).backward()
            self.batch_in_epoch = index + 1
            if task is not None:
                bar.advance(task)
            if last_micro:
                self._optimizer_step(float(loss.detach()))
        self.epoch += 1
        self.batch_in_epoch = 0

    # -- what a multi-process trainer changes -------------------------------------------------------------
    def _gradient_sync(self, last_micro: bool) -> Any:
        """No gradient all-reduce on non-final micro-steps of an accumulation group."""
        if not last_micro and hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def _eval_model(self) -> torch.nn.Module:
        return self.model

    def _sum_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def _incremental_store(self) -> Any:
        if getattr(self, "_store", None) is None:
            from .incremental_checkpoint import IncrementalCheckpointer

            self._store = IncrementalCheckpointer(self.checkpoint_path, keep=2)
        return self._store

    def _resume(self) -> None:
        assert self.checkpoint_path is not None
        if self.incremental_checkpoints:
            store = self._incremental_store()
            if store.latest() is not None:
                self._load_state(store.load(map_location=self.device))
        elif (self.checkpoint_path / CHECKPOINT).is_file():
            self.load_checkpoint(self.checkpoint_path / CHECKPOINT)

    def _checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        if self.incremental_checkpoints:
            self._incremental_store().save(self.step, self._full_state())
        else:
            self.save_checkpoint(self.checkpoint_path / CHECKPOINT)

    def _finish(self) -> None:
        """End of ``fit``."""

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
            self._checkpoint()


def capture_rng() -> dict[str, Any]:
    """This process's random states (torch, CUDA when in use, Python, NumPy) as tensors and ints."""
    python_version, python_state, _ = random.getstate()
    numpy_state = np.random.get_state()
    rng = {"torch": torch.get_rng_state(), "python": torch.tensor(python_state, dtype=torch.int64),
           "python_version": python_version, "numpy": torch.from_numpy(numpy_state[1].astype(np.int64)),
           "numpy_pos": int(numpy_state[2])}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    random.setstate((rng["python_version"], tuple(int(v) for v in rng["python"]), None))
    np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))


def _as_dataset(data: Any) -> Any:
    """A torch Dataset of (input, label) pairs from a :class:`deepseek.assets.Dataset`, a Dataset, or tensors."""
    if hasattr(data, "x") and hasattr(data, "y") and not isinstance(data, torch.utils.data.Dataset):
        return torch.utils.data.TensorDataset(data.x, data.y)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return torch.utils.data.TensorDataset(*data)
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return data
    raise invalid("data", type(data).__name__, "a deepseek.assets Dataset, a sized torch Dataset, or (inputs, labels)")


def optimizer_spec(model: torch.nn.Module, cfg: OptimizerConfig) -> tuple[type, list[dict[str, Any]], dict[str, Any]]:
    """The optimizer class, parameter groups and keyword arguments ``cfg`` asks for."""
    # no weight decay on biases and normalization weights (1-D parameters), as the field does
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.type in ("AdamW", "Adam"):
        return getattr(torch.optim, cfg.type), groups, {"lr": cfg.lr, "betas": cfg.betas}
    return getattr(torch.optim, cfg.type), groups, {"lr": cfg.lr, "momentum": cfg.momentum}


def _optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    cls, groups, kwargs = optimizer_spec(model, cfg)
    return cls(groups, **kwargs)


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
