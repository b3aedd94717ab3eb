"""The ``deepseek`` command and its ``deepseek-compile`` / ``deepseek-doctor`` aliases.

Each subcommand lives in the module that implements the feature, which provides
``configure_parser(parser)`` and ``run_cli(args) -> int``. Errors a user can fix
(:class:`deepseek.DeepSeekError`) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("deepseek.doctor", "report the environment: versions, CPU/GPU features, what works"),
    "bench": ("deepseek.bench.cli", "benchmark a model across backends (latency, throughput, memory)"),
    "profile": ("deepseek.bench.profile", "say where a model's time goes, per operator and per layer"),
    "evaluate": ("deepseek.evaluate", "accuracy on a bundled labeled set plus latency; gate CI on it"),
    "quantize": ("deepseek.quantization.cli", "quantize a model to INT8 with real calibration data; per-layer error report"),
    "prune": ("deepseek.pruning.cli", "remove channels (structured pruning), verify, and measure dense vs pruned latency"),
    "export": ("deepseek.compile.cli", "export a PyTorch or TensorFlow/Keras model to ONNX, verified against its "
               "framework"),
    "compile": ("deepseek.compile.cli", "compile a model into a deployable artifact for a target"),
    "train": ("deepseek.train.launch", "run a training script on N processes (torchrun), restarting dead workers"),
    "serve": ("deepseek.serve.cli", "serve a model repository over HTTP (KServe v2): versions, canary, batching, metrics"),
    "optimize": ("deepseek.optimize.cli", "the fastest (or smallest) artifact within an accuracy budget: precision, "
                 "lowering, float fallbacks and pruning searched and measured"),
    "tune": ("deepseek.tune.cli", "hyper-parameter search over a YAML search space (Optuna): one script run per trial"),
    "stream": ("deepseek.stream.cli", "replay transactions through real-time window features and a risk engine; "
               "simulate the Fraud-Detection Handbook's data"),
    "data": ("deepseek.data.cli", "clean text data by rules (length, language, toxicity) with a reason for every "
             "dropped row"),
    "convert": ("deepseek.nn.cli", "convert a Llama-architecture checkpoint into a DeepSeekForCausalLM folder"),
    "demo": ("deepseek.demo", "the end-to-end demo on the bundled MobileNetV2"),
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` subcommand's module is imported (the others stay lazy)."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="deepseek", description="Make models fast and small, and ship them.")
    parser.add_argument("--version", action="version", version=f"deepseek {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != selected:
            continue
        module = importlib.import_module(module_name)
        configure = getattr(module, f"configure_{name}_parser", None) or module.configure_parser
        configure(p)
        p.set_defaults(_module=module_name, _run=f"run_{name}_cli" if hasattr(module, f"run_{name}_cli") else "run_cli")
    return parser


def _run(argv: Sequence[str] | None) -> int:
    from ._errors import DeepSeekError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(selected if selected in SUBCOMMANDS else None)
    passthrough: list[str] = []
    if "--" in argv:  # what follows belongs to a program the subcommand runs (deepseek train SCRIPT -- ARGS)
        argv, passthrough = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = parser.parse_args(argv)
    if passthrough and not getattr(args, "_passthrough", False):
        parser.error(f"deepseek {args.command} takes no arguments after --")
    args.passthrough = passthrough
    run = getattr(importlib.import_module(args._module), args._run)
    try:
        return int(run(args) or 0)
    except DeepSeekError as exc:
        print(f"deepseek {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepseek {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(_run(argv))


def compile_main(argv: Sequence[str] | None = None) -> None:
    """``deepseek-compile`` is ``deepseek compile``."""
    sys.exit(_run(["compile", *(sys.argv[1:] if argv is None else argv)]))


def doctor_main(argv: Sequence[str] | None = None) -> None:
    """``deepseek-doctor`` is ``deepseek doctor``."""
    sys.exit(_run(["doctor", *(sys.argv[1:] if argv is None else argv)]))
