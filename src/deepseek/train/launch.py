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
from .config import (
    COMPRESSIONS,
    LAUNCH_ENV,
    OPTIMIZERS,
    PRECISIONS,
    STRATEGIES,
    DistributedConfig,
    OptimizerConfig,
)

# the configuration field a validation error names -> the flag the user typed (both are shown)
FLAGS = {"optimizer_config.type": "--optimizer", "optimizer_config.lr": "--lr", "strategy": "--strategy",
         "compression": "--compression", "distributed_config.gradient_accumulation": "--gradient-accumulation",
         "precision": "--precision", "checkpoint_path": "--checkpoint-path"}
RESOLVE_TIMEOUT_S = 5.0


def _job_id(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a non-empty id without spaces, got {text!r}")
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import count, declare_flag_names, declare_outputs, endpoint, number

    parser.add_argument("script", metavar="SCRIPT", help="the training script (it builds a deepseek.DistributedTrainer); "
                        "its own arguments go after --")
    parser.set_defaults(_passthrough=True)
    parser.add_argument("--nproc", type=count(1), default=1, help="processes on this machine (default 1)")
    parser.add_argument("--nnodes", type=count(1), default=1, help="machines in the job (default 1)")
    parser.add_argument("--rdzv-endpoint", type=endpoint, default=None,
                        help="HOST:PORT all machines meet at (multi-machine; ranks are assigned as they arrive)")
    parser.add_argument("--job-id", type=_job_id, default="deepseek", help="rendezvous id shared by the job's machines")
    parser.add_argument("--max-restarts", type=count(0), default=3, help="restarts after a worker dies (default 3)")
    parser.add_argument("--strategy", help=f"one of {STRATEGIES} (default ring_allreduce)")
    parser.add_argument("--compression", help=f"gradient compression, one of {[c for c in COMPRESSIONS if c]}")
    parser.add_argument("--optimizer", help=f"one of {OPTIMIZERS}")
    parser.add_argument("--lr", type=number(above=0), help="learning rate")
    parser.add_argument("--gradient-accumulation", type=count(), help="micro-batches per optimizer step")
    parser.add_argument("--sync-bn", action="store_true", default=None, help="BatchNorm statistics over all processes")
    parser.add_argument("--precision", choices=PRECISIONS, help="autocast dtype (default auto)")
    parser.add_argument("--checkpoint-path", help="folder for sharded checkpoints (resume and elastic restarts)")
    declare_outputs(parser, folders=("checkpoint_path",))
    declare_flag_names(parser, FLAGS)


def launch_config(args: argparse.Namespace) -> dict[str, Any]:
    """The validated defaults handed to the script's trainers (raises on a bad value, naming the configuration
    field; the command shows the flag that set it)."""
    from .._atomic import check_output

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
        # every process writes there: a file in the way or an unwritable place is refused before any starts
        check_output(args.checkpoint_path, argument="--checkpoint-path", inputs=[args.script], folder=True)
        config["checkpoint_path"] = args.checkpoint_path
    return config


def check_endpoint(endpoint: str, *, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
    """Refuse a rendezvous ``HOST:PORT`` whose host does not resolve within ``timeout_s`` (torchrun would retry it
    for minutes, then fail with a C++ stack)."""
    import socket
    import threading

    host, _, port = endpoint.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    outcome: dict[str, Any] = {}

    def resolve() -> None:
        try:
            outcome["addresses"] = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise invalid("--rdzv-endpoint", endpoint, f"a host that resolves (no answer for {host!r} within "
                                                   f"{timeout_s:g} s)")
    if "error" in outcome:
        exc = outcome["error"]
        reason = getattr(exc, "strerror", None) or str(exc)
        raise invalid("--rdzv-endpoint", endpoint, f"a host that resolves ({host!r}: {reason})")


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """The ``python -m torch.distributed.run`` command line for ``args`` (after checking them)."""
    from .._cli_common import endpoint

    script = Path(args.script)
    if not script.is_file():
        raise invalid("SCRIPT", args.script, "an existing Python file" if not script.exists() else
                      "an existing Python file, not a folder")
    for name in ("nproc", "nnodes"):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(f"--{name.replace('_', '-')}", value, "an integer >= 1")
    if isinstance(args.max_restarts, bool) or not isinstance(args.max_restarts, int) or args.max_restarts < 0:
        raise invalid("--max-restarts", args.max_restarts, "an integer >= 0")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc}",
               f"--max-restarts={args.max_restarts}"]
    if args.nnodes == 1:
        if args.rdzv_endpoint:
            raise invalid("--rdzv-endpoint", args.rdzv_endpoint, "nothing with --nnodes 1 (one machine meets itself); "
                                                                 "pass --nnodes N for a job of N machines")
        command.append("--standalone")
    else:
        if not args.rdzv_endpoint:
            raise invalid("--rdzv-endpoint", None, "HOST:PORT of the first machine when --nnodes > 1")
        try:
            endpoint(args.rdzv_endpoint)
        except argparse.ArgumentTypeError as exc:
            raise invalid("--rdzv-endpoint", args.rdzv_endpoint, "HOST:PORT with a port 1-65535, e.g. "
                                                                 "10.0.0.1:29500") from exc
        command += [f"--nnodes={args.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}",
                    f"--rdzv-id={args.job_id}"]
    return [*command, str(script), *getattr(args, "passthrough", [])]


def run_cli(args: argparse.Namespace) -> int:
    command = torchrun_command(args)
    config = launch_config(args)
    if args.nnodes > 1:
        check_endpoint(args.rdzv_endpoint)
    env = {**os.environ, LAUNCH_ENV: json.dumps(config)}
    return subprocess.run(command, env=env, check=False).returncode
