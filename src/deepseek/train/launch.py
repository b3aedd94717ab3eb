"""``deepseek train SCRIPT --nproc N``: validate the training configuration, then run SCRIPT under torchrun.

The options become the defaults of every :class:`DistributedTrainer` the script creates (its own arguments
win), so a bad strategy, optimizer or accumulation is reported here, before any process starts. Workers that
die are restarted by torchrun (``--max-restarts``) and resume from the newest complete checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .._errors import invalid
from .config import COMPRESSIONS, OPTIMIZERS, PRECISIONS, STRATEGIES, DistributedConfig, OptimizerConfig
from .distributed import LAUNCH_ENV


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the training script (it builds a deepseek.DistributedTrainer); "
                        "its own arguments go after --")
    parser.set_defaults(_passthrough=True)
    parser.add_argument("--nproc", type=int, default=1, help="processes on this machine (default 1)")
    parser.add_argument("--nnodes", type=int, default=1, help="machines in the job (default 1)")
    parser.add_argument("--rdzv-endpoint", default=None,
                        help="HOST:PORT all machines meet at (multi-machine; ranks are assigned as they arrive)")
    parser.add_argument("--job-id", default="deepseek", help="rendezvous id shared by the job's machines")
    parser.add_argument("--max-restarts", type=int, default=3, help="restarts after a worker dies (default 3)")
    parser.add_argument("--strategy", help=f"one of {STRATEGIES} (default ring_allreduce)")
    parser.add_argument("--compression", help=f"gradient compression, one of {[c for c in COMPRESSIONS if c]}")
    parser.add_argument("--optimizer", help=f"one of {OPTIMIZERS}")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--gradient-accumulation", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--sync-bn", action="store_true", default=None, help="BatchNorm statistics over all processes")
    parser.add_argument("--precision", choices=PRECISIONS, help="autocast dtype (default auto)")
    parser.add_argument("--checkpoint-path", help="folder for sharded checkpoints (resume and elastic restarts)")


def launch_config(args: argparse.Namespace) -> dict[str, Any]:
    """The validated defaults handed to the script's trainers (raises on a bad value)."""
    optimizer = {k: v for k, v in (("type", args.optimizer), ("lr", args.lr)) if v is not None}
    distributed = {k: v for k, v in (("strategy", args.strategy), ("compression", args.compression),
                                     ("gradient_accumulation", args.gradient_accumulation),
                                     ("sync_bn", args.sync_bn)) if v is not None}
    OptimizerConfig.parse(optimizer)
    DistributedConfig.parse(distributed)
    config: dict[str, Any] = {"optimizer_config": optimizer, "distributed_config": distributed}
    if args.precision:
        config["precision"] = args.precision
    if args.checkpoint_path:
        config["checkpoint_path"] = args.checkpoint_path
    return config


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """The ``python -m torch.distributed.run`` command line for ``args`` (after checking them)."""
    script = Path(args.script)
    if not script.is_file():
        raise invalid("script", args.script, "an existing Python file")
    for name in ("nproc", "nnodes"):
        if getattr(args, name) < 1:
            raise invalid(f"--{name.replace('_', '-')}", getattr(args, name), "an integer >= 1")
    if args.max_restarts < 0:
        raise invalid("--max-restarts", args.max_restarts, "an integer >= 0")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc}",
               f"--max-restarts={args.max_restarts}"]
    if args.nnodes == 1:
        command.append("--standalone")
    else:
        if not args.rdzv_endpoint:
            raise invalid("--rdzv-endpoint", None, "HOST:PORT of the first machine when --nnodes > 1")
        command += [f"--nnodes={args.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}",
                    f"--rdzv-id={args.job_id}"]
    return [*command, str(script), *getattr(args, "passthrough", [])]


def run_cli(args: argparse.Namespace) -> int:
    config = launch_config(args)
    command = torchrun_command(args)
    env = {**os.environ, LAUNCH_ENV: json.dumps(config)}
    return subprocess.run(command, env=env, check=False).returncode
