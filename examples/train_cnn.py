"""Train a small CNN on a real labeled set with deepseek.DistributedTrainer.

    deepseek train examples/train_cnn.py --nproc 2 -- --dataset fashion_mnist --epochs 2
    deepseek train examples/train_cnn.py --nproc 2 --strategy zero1 --compression fp16 -- --dataset digits

Strategy, compression, optimizer and checkpoint folder come from `deepseek train`'s options unless given
here. ``--die-at-step N`` kills one worker (SIGKILL, rank 1, first attempt only) after step N, to watch
torchrun restart the job and the trainer resume from its newest checkpoint. ``--then ARGS`` (repeatable) trains
again in the same processes and process group with ARGS on top of this command line, e.g.
``-- --out ring --then "--strategy zero1 --out zero1"``: several runs for one interpreter start-up per process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

import deepseek
from deepseek import assets
from deepseek.train import Callback


def cnn(channels: int, size: int, dropout: float = 0.1) -> torch.nn.Module:
    """Two conv blocks with BatchNorm (what sync BN is for; no conv bias, BatchNorm removes it), pooled, a classifier."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 32, 3, padding=1, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2) if size >= 16 else torch.nn.Identity(),
        torch.nn.Conv2d(32, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Dropout(dropout), torch.nn.Linear(64 * 16, 10))


def data(name: str, limit: int | None) -> tuple[assets.Dataset, assets.Dataset]:
    if name == "digits":
        train, test = assets.digits().split(0.2, seed=0)
        train = assets.Dataset(train.name, train.x.reshape(-1, 1, 8, 8), train.y, train.classes)
        test = assets.Dataset(test.name, test.x.reshape(-1, 1, 8, 8), test.y, test.classes)
    else:
        train, test = assets.fashion_mnist("train"), assets.fashion_mnist("test")
    if limit:
        train = assets.Dataset(train.name, train.x[:limit], train.y[:limit], train.classes)
    return train, test


class _DieAt(Callback):
    """Fault injection: rank 1 of the first attempt kills itself after an optimizer step."""

    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, trainer, metrics):
        if trainer.step == self.at and trainer.rank == 1 and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
            os.kill(os.getpid(), signal.SIGKILL)


class _StepLog(Callback):
    """Rank 0 appends every optimizer step it finishes to a file: restarts show as a jump back, if any."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_step_end(self, trainer, metrics):
        if trainer.rank == 0:
            with open(self.path, "a") as f:
                f.write(f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')} {trainer.step}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "fashion_mnist"], default="digits")
    parser.add_argument("--limit", type=int, help="use only the first N training samples")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--float64", action=argparse.BooleanOptionalAction, default=False,
                        help="train in float64: N processes then match one to float64 rounding (exactness checks)")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--die-at-step", type=int)
    parser.add_argument("--step-log", type=Path)
    parser.add_argument("--out", type=Path, help="write metrics (JSON) and final weights (.safetensors) here")
    # None: `deepseek train`'s option (or the trainer's default)
    parser.add_argument("--strategy")
    parser.add_argument("--compression")
    parser.add_argument("--sync-bn", action=argparse.BooleanOptionalAction)
    parser.add_argument("--gradient-accumulation", type=int)
    parser.add_argument("--checkpoint-path", type=Path)
    parser.add_argument("--then", action="append", default=[], metavar="ARGS",
                        help="then train again in the same processes with these options added (repeatable)")
    args = parser.parse_args()
    runs = [args] + [parser.parse_args(shlex.split(more), argparse.Namespace(**vars(args))) for more in args.then]
    # a later trainer joins the group the first one made; closing that one last leaves the group
    trainers = [train_once(run) for run in runs]
    for trainer in reversed(trainers):
        trainer.close()


def train_once(args: argparse.Namespace) -> deepseek.DistributedTrainer:
    train, test = data(args.dataset, args.limit)
    model = cnn(train.x.shape[1], train.x.shape[-1], args.dropout)
    if args.float64:
        model = model.double()
        train, test = (assets.Dataset(d.name, d.x.double(), d.y, d.classes) for d in (train, test))
    callbacks: list[Callback] = []
    if args.die_at_step:
        callbacks.append(_DieAt(args.die_at_step))
    if args.step_log:
        callbacks.append(_StepLog(args.step_log))
    distributed = {key: value for key, value in (("sync_bn", args.sync_bn),
                                                 ("gradient_accumulation", args.gradient_accumulation))
                   if value is not None}
    trainer = deepseek.DistributedTrainer(
        optimizer_config={"type": "AdamW", "lr": args.lr, "weight_decay": 0.01, "clip_grad_norm": 1.0},
        distributed_config=distributed or None, strategy=args.strategy, compression=args.compression,
        checkpoint_path=args.checkpoint_path, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
        callbacks=callbacks, precision="fp32", progress=False)
    start = time.perf_counter()
    history = trainer.fit(train, epochs=args.epochs, eval_data=test, model=model)
    seconds = time.perf_counter() - start
    weights = trainer.full_state_dict()
    totals = trainer.communication_totals()  # every process takes part
    if trainer.is_main_process:
        summary = {"world_size": trainer.world_size, "strategy": trainer.dist.strategy,
                   "compression": trainer.dist.compression, "steps": trainer.step, "history": history,
                   "resumed_from": trainer.resumed_from, "fit_seconds": seconds,
                   "optimizer_state_bytes": trainer.optimizer_state_bytes(),
                   "bytes_allreduced": trainer.comm_stats.bytes_allreduced if trainer.comm_stats else None,
                   "allreduce_calls": trainer.comm_stats.calls if trainer.comm_stats else None,
                   "bytes_internode": trainer.comm_stats.bytes_internode if trainer.comm_stats else None,
                   "job_bytes_allreduced": totals["bytes_allreduced"], "job_bytes_internode": totals["bytes_internode"]}
        print(json.dumps({k: v for k, v in summary.items() if k != "history"} | history[-1]))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "metrics.json").write_text(json.dumps(summary, indent=1))
            save_file({k: v.contiguous() for k, v in weights.items()}, str(args.out / "weights.safetensors"))
    return trainer


if __name__ == "__main__":
    main()
