"""DistributedTrainer: DeepSeekTrainer across processes on torch.distributed (launched by torchrun).

Strategies: ``ring_allreduce`` (DistributedDataParallel), ``zero1`` (DDP + ZeroRedundancyOptimizer: optimizer
state sharded) and ``fsdp`` (FSDP2 ``fully_shard``: parameters, gradients and optimizer state sharded).
Gradient compression: DDP communication hooks (fp16, bf16, PowerSGD) with the bytes counted, or FSDP's reduce
dtype. Checkpoints: sharded and asynchronous with torch.distributed.checkpoint; under ``torchrun
--max-restarts`` a job whose worker died restarts from the newest complete checkpoint, exactly where it was.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from .._core.checks import check_choice, check_int
from .._core.errors import ArtifactError, invalid
from .comm_hooks import CommStats, register_compression
from .config import LAUNCH_ENV, DistributedConfig, OptimizerConfig
from .state_tree import join_tensors, split_tensors
from .trainer import DeepSeekTrainer, _optimizer, capture_rng, optimizer_spec, restore_rng

if TYPE_CHECKING:
    from .dist_checkpoint import ShardedCheckpointer

_log = logging.getLogger("deepseek.train")


def launcher_defaults() -> dict[str, Any]:
    """The configuration ``deepseek train`` validated and passed to the script's processes (empty otherwise)."""
    raw = os.environ.get(LAUNCH_ENV)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise invalid(LAUNCH_ENV, raw[:80], "JSON written by `deepseek train`") from e
    return data if isinstance(data, dict) else {}


def _merged(explicit: Any, launched: Any, where: str) -> Any:
    """The script's own config wins key by key over the launcher's."""
    if launched is None or isinstance(explicit, (OptimizerConfig, DistributedConfig)):
        return explicit
    if explicit is not None and not isinstance(explicit, dict):
        raise invalid(where, explicit, "a dict")
    return {**launched, **(explicit or {})}


class DistributedTrainer(DeepSeekTrainer):
    """:class:`DeepSeekTrainer` over all processes of a torch.distributed job.

    ``batch_size`` is per process: one optimizer step sees ``batch_size * world_size * gradient_accumulation``
    samples, the same batches one process with the whole global batch would see. Run the script with
    ``deepseek train SCRIPT --nproc N`` (or ``torchrun``); run without a launcher it is a 1-process group.
    The model may be given here or to :meth:`fit`.
    """

    def __init__(self, model: torch.nn.Module | None = None,
                 optimizer_config: dict[str, Any] | OptimizerConfig | None = None,
                 distributed_config: dict[str, Any] | DistributedConfig | None = None, *,
                 strategy: str | None = None, compression: str | None = None,
                 checkpoint_path: str | Path | None = None, checkpoint_every: int | None = None,
                 keep_checkpoints: int = 2, async_checkpoint: bool = True, precision: str | None = None,
                 device: str = "auto", **trainer_options: Any) -> None:
        launched = launcher_defaults()
        distributed = _merged(distributed_config, launched.get("distributed_config"), "distributed_config")
        for key, value in (("strategy", strategy), ("compression", compression)):
            if value is not None:
                if isinstance(distributed, DistributedConfig):
                    raise invalid(key, value, "it inside distributed_config, or distributed_config as a dict")
                distributed = {**(distributed or {}), key: value}
        check_int(keep_checkpoints, "keep_checkpoints", minimum=1)
        check_choice(device, "device", ("auto", "cpu", "cuda"), expected="'auto', 'cpu' or 'cuda'")
        if checkpoint_path is None:
            checkpoint_path = launched.get("checkpoint_path")
        self._configure(_merged(optimizer_config, launched.get("optimizer_config"), "optimizer_config"), distributed,
                        precision=precision or launched.get("precision", "auto"), checkpoint_path=checkpoint_path,
                        checkpoint_every=checkpoint_every, device="cpu", **_trainer_defaults(trainer_options))
        if self.dist.strategy in ("fsdp", "hsdp") and self.dtype == "fp16":
            raise invalid("precision", "fp16", f"'bf16' or 'fp32' with strategy={self.dist.strategy!r} (float16 loss scaling "
                          "would need every shard's overflow check)")
        self._device_request = device
        self.keep_checkpoints, self.async_checkpoint = keep_checkpoints, async_checkpoint
        self.comm_stats: CommStats | None = None
        self.resumed_from: int | None = None  # the checkpoint step this run continued from, if any
        self._checkpointer: ShardedCheckpointer | None = None
        self._owns_group = False
        self.model: torch.nn.Module | None = None  # type: ignore[assignment]
        if model is not None:
            self._attach(model)

    # -- public ---------------------------------------------------------------------------------------------
    def fit(self, train_data: Any, epochs: int, eval_data: Any = None, *, resume: bool = True,
            model: torch.nn.Module | None = None) -> list[dict[str, float]]:
        if model is not None:
            if self.model is not None:
                raise invalid("model", "a second model", "the model once, to DistributedTrainer() or to fit()")
            self._attach(model)
        if self.model is None:
            raise invalid("model", None, "a torch.nn.Module, given to DistributedTrainer(model=...) or fit(model=...)")
        return super().fit(train_data, epochs, eval_data, resume=resume)

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def optimizer_state_bytes(self) -> int:
        """Bytes of optimizer state this process holds (ZeRO-1 and FSDP hold about 1/world_size of it)."""
        optimizer = self.optimizer.optim if self.dist.strategy == "zero1" else self.optimizer
        held = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        local = [v.to_local() if hasattr(v, "to_local") else v for v in held]
        return sum(t.numel() * t.element_size() for t in local)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The whole model's weights (unsharded, no DDP prefix) on CPU, on every process."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True,
                                                                         broadcast_from_rank0=False))

    def communication_totals(self) -> dict[str, int]:
        """Gradient bytes handed to collectives, summed over every process of the job (a collective: every
        process calls it): ``bytes_allreduced`` in all, ``bytes_internode`` to collectives spanning machines."""
        stats = self.comm_stats
        values = torch.tensor([stats.bytes_allreduced, stats.bytes_internode, stats.calls] if stats else [0, 0, 0],
                              dtype=torch.int64)
        values = self._sum_over_processes(values)
        return {"bytes_allreduced": int(values[0]), "bytes_internode": int(values[1]), "calls": int(values[2])}

    def close(self) -> None:
        """Wait for a pending checkpoint and leave the process group if this trainer created it."""
        if self._checkpointer is not None:
            self._checkpointer.wait()
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    # -- setup --------------------------------------------------------------------------------------------
    def _attach(self, model: torch.nn.Module) -> None:
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        self._join_group()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if self.world_size > 1:  # one random stream per process: dropout masks must differ across processes
            torch.manual_seed(self.seed + self.rank)
            random.seed(self.seed + self.rank)
            np.random.seed(self.seed + self.rank)
        model = self._prepare(model)
        self._module = model
        strategy = self.dist.strategy
        if strategy in ("fsdp", "hsdp"):
            from .hierarchy import hsdp_mesh

            mesh = hsdp_mesh(self.device, self.dist.processes_per_node) if strategy == "hsdp" else None
            self.model = _fully_shard(model, self.dist.compression, mesh)
            self.optimizer = _optimizer(self.model, self.optim)
            return
        from torch.nn.parallel import DistributedDataParallel

        from .hierarchy import processes_per_node

        self.model = DistributedDataParallel(model, device_ids=[self._local_rank] if self.device == "cuda" else None)
        spans_nodes = self.world_size > processes_per_node(self.dist.processes_per_node)
        if strategy == "hierarchical":
            from .hierarchy import _HierarchicalState, hierarchical_hook, node_layout

            self.comm_stats = CommStats("hierarchical")
            self.model.register_comm_hook(_HierarchicalState(node_layout(self.dist.processes_per_node),
                                                             self.comm_stats), hierarchical_hook)
        else:
            self.comm_stats = register_compression(
                self.model, self.dist.compression, powersgd_rank=self.dist.powersgd_rank,
                powersgd_start_step=self.dist.powersgd_start_step, seed=self.seed, spans_nodes=spans_nodes)
        cls, groups, kwargs = optimizer_spec(model, self.optim)
        if strategy == "zero1":
            from torch.distributed.optim import ZeroRedundancyOptimizer

            self.optimizer = ZeroRedundancyOptimizer(groups, optimizer_class=cls, **kwargs)
        else:
            self.optimizer = cls(groups, **kwargs)

    def _join_group(self) -> None:
        cuda = self._device_request == "cuda" or (self._device_request == "auto" and torch.cuda.is_available())
        if self._device_request == "cuda" and not torch.cuda.is_available():
            raise invalid("device", "cuda", "a machine with a CUDA GPU, or device='cpu'")
        self._local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(self._local_rank)
        self.device = "cuda" if cuda else "cpu"
        backend = self.dist.backend if self.dist.backend != "auto" else ("nccl" if cuda else "gloo")
        if dist.is_initialized():
            return
        timeout = datetime.timedelta(minutes=10)
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun / deepseek train
            store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
            # after a restart torchrun may hand the new workers the old attempt's store: without a fresh key space
            # Gloo can read a dead worker's address and hang connecting to it
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group(backend, store=dist.PrefixStore(f"deepseek/attempt{attempt}", store), rank=rank,
                                    world_size=world_size, timeout=timeout)
        else:  # a plain `python script.py`: a group of one, so every strategy runs the same code
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
        self._owns_group = True

    # -- the loop's multi-process parts ------------------------------------------------------------------
    def _gradient_sync(self, last_micro: bool) -> Any:
        if self.dist.strategy in ("fsdp", "hsdp"):
            self.model.set_requires_gradient_sync(last_micro)
            return contextlib.nullcontext()
        return super()._gradient_sync(last_micro)

    def _eval_model(self) -> torch.nn.Module:
        # DDP's forward broadcasts buffers (a collective per call); the wrapped module needs none. FSDP's
        # module must run through its hooks (it gathers the parameters).
        self._sync_buffers()
        return self.model if self.dist.strategy in ("fsdp", "hsdp") else self._module

    def _sync_buffers(self) -> None:
        """Rank 0's buffers (BatchNorm running statistics) everywhere, as DDP's next forward would make them:
        without sync BN each process updates them from its own samples, and eval and checkpoints must not
        depend on which process they come from."""
        with torch.no_grad():
            for buffer in self._module.buffers():
                dist.broadcast(buffer, 0)

    def _sum_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        values = values.to(self.device)
        dist.all_reduce(values)
        return values.cpu()

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _sharded(self) -> ShardedCheckpointer:
        if self._checkpointer is None:
            from .dist_checkpoint import ShardedCheckpointer  # torch.distributed.checkpoint: ~0.7 s to import

            assert self.checkpoint_path is not None
            # saves run in a background thread: their collectives get their own group, apart from training's
            group = dist.new_group(backend="gloo") if self.async_checkpoint else None
            self._checkpointer = ShardedCheckpointer(self.checkpoint_path, keep=self.keep_checkpoints,
                                                     process_group=group, asynchronous=self.async_checkpoint)
        return self._checkpointer

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        """(tensors, metadata shared by all processes, this process's metadata) describing the run now."""
        from torch.distributed.checkpoint.state_dict import (
            _init_optim_state,
            get_model_state_dict,
            get_state_dict,
        )

        tensors: dict[str, torch.Tensor] = {}
        mine: dict[str, Any] = {}
        self._sync_buffers()
        if self.dist.strategy == "zero1":
            model_state = get_model_state_dict(self.model)
            _init_optim_state(self.optimizer.optim)  # a fresh process has no state yet to load into
            mine["optimizer"] = split_tensors(self.optimizer.optim.state_dict(), f"rank{self.rank}/optim", tensors)
            shared_optimizer = None
        else:
            model_state, optim_state = get_state_dict(self.model, self.optimizer)
            shared_optimizer = split_tensors(optim_state, "optim", tensors)
        tensors.update({f"model/{k}": v for k, v in model_state.items()})
        mine["rng"] = split_tensors(capture_rng(), f"rank{self.rank}/rng", tensors)
        shared = {**_jsonable(self._progress_state()), "world_size": self.world_size, "batch_size": self.batch_size,
                  "strategy": self.dist.strategy, "optimizer": shared_optimizer}
        return tensors, shared, mine

    def _checkpoint(self) -> None:
        tensors, shared, mine = self._state()
        self._sharded().save(self.step, tensors, shared, mine)

    def _resume(self) -> None:
        checkpointer = self._sharded()
        path = checkpointer.latest()
        if path is None:
            return
        tensors, _, _ = self._state()  # templates: right shapes and shardings, filled in place
        shared, mine = checkpointer.load(path, tensors)
        if shared["world_size"] != self.world_size or shared["batch_size"] != self.batch_size:
            raise ArtifactError(f"checkpoint: {path} was written by {shared['world_size']} processes with batch_size "
                                f"{shared['batch_size']}; resume with the same (now {self.world_size} and "
                                f"{self.batch_size}) or start a new checkpoint_path")
        if shared["strategy"] != self.dist.strategy:
            raise ArtifactError(f"checkpoint: {path} was written with strategy {shared['strategy']!r}, "
                                f"not {self.dist.strategy!r}")
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

        model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        if self.dist.strategy == "zero1":
            set_model_state_dict(self.model, model_state)
            self.optimizer.optim.load_state_dict(join_tensors(mine["optimizer"], tensors))
            for outer, inner in zip(self.optimizer.param_groups, self.optimizer.optim.param_groups):
                outer.update({k: v for k, v in inner.items() if k != "params"})
        else:
            set_state_dict(self.model, self.optimizer, model_state_dict=model_state,
                           optim_state_dict=join_tensors(shared["optimizer"], tensors))
        self._restore_progress(shared)
        restore_rng(join_tensors(mine["rng"], tensors))
        self.resumed_from = self.step
        if self.rank == 0:
            _log.warning("resumed from %s: step %d, epoch %d, micro-batch %d", path, self.step, self.epoch,
                         self.batch_in_epoch)

    def _finish(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.wait()

    def save_checkpoint(self, path: str | Path) -> Path:  # type: ignore[override]
        """Sharded checkpoints live in ``checkpoint_path``; see ``fit``."""
        raise invalid("save_checkpoint", str(path), "DistributedTrainer(checkpoint_path=...): it saves sharded "
                      "checkpoints itself (every checkpoint_every steps and each epoch)")


def _trainer_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with DeepSeekTrainer's own defaults (one source for them)."""
    import inspect

    # incremental_checkpoints: DistributedTrainer's checkpoints are sharded DCP saves (refused as unknown here)
    passed_separately = {"self", "model", "optimizer_config", "distributed_config", "precision", "checkpoint_path",
                         "checkpoint_every", "device", "incremental_checkpoints"}
    allowed = {name: p.default for name, p in inspect.signature(DeepSeekTrainer.__init__).parameters.items()
               if name not in passed_separately}
    unknown = set(options) - set(allowed)
    if unknown:
        raise invalid("DistributedTrainer", sorted(unknown), f"keyword arguments among {sorted(allowed)}")
    return {**allowed, **options}


def _jsonable(tree: Any) -> Any:
    """Scheduler/scaler states as plain JSON values (tensors become numbers or lists)."""
    if isinstance(tree, torch.Tensor):
        return tree.tolist()
    if isinstance(tree, dict):
        return {k: _jsonable(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_jsonable(v) for v in tree]
    return tree


def _fully_shard(model: torch.nn.Module, compression: str | None, mesh: Any = None) -> torch.nn.Module:
    """FSDP2: every parameter-holding child (inside containers) gets its own shard unit, then the root; on a 2-D
    ``mesh`` (replicate, shard) that is HSDP. All processes start from rank 0's weights, as DDP guarantees."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor, 0)
    reduce_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(compression or "")
    policy = MixedPrecisionPolicy(reduce_dtype=reduce_dtype)
    for unit in _shard_units(model):
        fully_shard(unit, mp_policy=policy, mesh=mesh)
    fully_shard(model, mp_policy=policy, mesh=mesh)
    return model


def _shard_units(module: torch.nn.Module) -> Iterable[torch.nn.Module]:
    for child in module.children():
        if isinstance(child, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
            yield from _shard_units(child)
        elif any(True for _ in child.parameters()):
            yield child
