"""``deepseek train SCRIPT --nproc N [-- SCRIPT_ARGS]``: parses the flags and calls :func:`deepseek.train.launch.launch`."""

from __future__ import annotations

import argparse

from ..train.config import COMPRESSIONS, OPTIMIZERS, PRECISIONS, STRATEGIES

# the configuration field a validation error names -> the flag the user typed (both are shown)
FLAGS = {"optimizer_config.type": "--optimizer", "optimizer_config.lr": "--lr", "strategy": "--strategy",
         "compression": "--compression", "distributed_config.gradient_accumulation": "--gradient-accumulation",
         "precision": "--precision", "checkpoint_path": "--checkpoint-path"}


def _endpoint(text: str) -> str:
    from ..train.launch import valid_endpoint

    if not valid_endpoint(text):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port 1-65535, e.g. 127.0.0.1:29500, got {text!r}")
    return text


def _job_id(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a non-empty id without spaces, got {text!r}")
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs, number

    parser.add_argument("script", metavar="SCRIPT", help="the training script (it builds a deepseek.DistributedTrainer); "
                        "its own arguments go after --")
    parser.set_defaults(_passthrough=True)
    parser.add_argument("--nproc", type=count(1), default=1, help="processes on this machine (default 1)")
    parser.add_argument("--nnodes", type=count(1), default=1, help="machines in the job (default 1)")
    parser.add_argument("--rdzv-endpoint", type=_endpoint, default=None,
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


def run_cli(args: argparse.Namespace) -> int:
    from ..train.launch import launch

    return launch(args.script, nproc=args.nproc, nnodes=args.nnodes, rdzv_endpoint=args.rdzv_endpoint,
                  job_id=args.job_id, max_restarts=args.max_restarts, script_args=getattr(args, "passthrough", []),
                  strategy=args.strategy, compression=args.compression, optimizer=args.optimizer, lr=args.lr,
                  gradient_accumulation=args.gradient_accumulation, sync_bn=args.sync_bn, precision=args.precision,
                  checkpoint_path=args.checkpoint_path)
