"""The ``deepseek`` command and its ``deepseek-compile`` / ``deepseek-doctor`` aliases.

Each subcommand has a module of its own in this package (``deepseek.cli.<command>``: parse, call one library
function, print), which provides ``configure_parser(parser)`` and ``run_cli(args) -> int``. Errors a user can fix
(:class:`deepseek.DeepSeekError`) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("deepseek.cli.doctor", "report the environment: versions, CPU/GPU features, what works"),
    "bench": ("deepseek.cli.bench", "benchmark a model across backends (latency, throughput, memory)"),
    "profile": ("deepseek.cli.profile", "say where a model's time goes, per operator and per layer"),
    "evaluate": ("deepseek.cli.evaluate", "accuracy on a bundled labeled set plus latency; gate CI on it"),
    "quantize": ("deepseek.cli.quantize", "quantize a model to INT8 with real calibration data; per-layer error report"),
    "prune": ("deepseek.cli.prune", "remove channels (structured pruning), verify, and measure dense vs pruned latency"),
    "export": ("deepseek.cli.compile", "export a PyTorch or TensorFlow/Keras model to ONNX, verified against its "
               "framework"),
    "compile": ("deepseek.cli.compile", "compile a model into a deployable artifact for a target"),
    "train": ("deepseek.cli.train", "run a training script on N processes (torchrun), restarting dead workers"),
    "serve": ("deepseek.cli.serve", "serve a model repository over HTTP (KServe v2): versions, canary, batching, metrics"),
    "optimize": ("deepseek.cli.optimize", "the fastest (or smallest) artifact within an accuracy budget: precision, "
                 "lowering, float fallbacks and pruning searched and measured"),
    "tune": ("deepseek.cli.tune", "hyper-parameter search over a YAML search space (Optuna): one script run per trial"),
    "stream": ("deepseek.cli.stream", "replay transactions through real-time window features and a risk engine; "
               "simulate the Fraud-Detection Handbook's data"),
    "data": ("deepseek.cli.data", "clean text data by rules (length, language, toxicity) with a reason for every "
             "dropped row"),
    "convert": ("deepseek.cli.convert", "convert a Llama-architecture checkpoint into a DeepSeekForCausalLM folder"),
    "demo": ("deepseek.cli.demo", "the end-to-end demo on the bundled MobileNetV2"),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command and the argument (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` subcommand's module is imported (the others stay lazy)."""
    from .. import __version__

    parser = _Parser(prog="deepseek", description="Make models fast and small, and ship them.")
    parser.add_argument("--version", action="version", version=f"deepseek {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.subcommands = sub.choices  # type: ignore[attr-defined]
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
    from .._core.errors import DeepSeekError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(selected if selected in SUBCOMMANDS else None)
    except (DeepSeekError, ImportError) as exc:  # the subcommand's module needs an extra that is not installed
        print(f"deepseek {selected}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    passthrough: list[str] = []
    if "--" in argv:  # what follows belongs to a program the subcommand runs (deepseek train SCRIPT -- ARGS)
        argv, passthrough = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        args = parser.parse_args(argv)
        if passthrough and not getattr(args, "_passthrough", False):
            parser.error(f"deepseek {args.command} takes no arguments after --")
    except SystemExit as exc:  # argparse's own exit: --help, --version (0) or a one-line usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    args.passthrough = passthrough
    actions = _selected_actions(parser.subcommands[args.command], args)
    try:
        from ._common import check_declared_outputs

        check_declared_outputs(args, actions)
        run = getattr(importlib.import_module(args._module), args._run)
        return int(run(args) or 0)
    except DeepSeekError as exc:  # the library names its Python arguments: say the flag the user typed
        from ._common import flag_message

        message = flag_message(exc, actions, getattr(args, "_flag_names", None))
        print(f"deepseek {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepseek {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the environment said no (disk full, permissions, a vanished file): not a bug of ours
        if os.environ.get("DEEPSEEK_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"deepseek {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line by default, the traceback with DEEPSEEK_DEBUG=1
        if os.environ.get("DEEPSEEK_DEBUG"):
            raise
        print(f"deepseek {args.command}: internal error ({type(exc).__name__}: {_one_line(exc)}): a bug in deepseek, "
              "not in your input; DEEPSEEK_DEBUG=1 prints the traceback — please report it", file=sys.stderr)
        return 1


def _selected_actions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.Action]:
    """The actions of ``parser`` and of the nested subcommand parsers ``args`` selected (``stream replay``)."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                actions += _selected_actions(chosen, args)
    return actions


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 2000 else text[:2000] + "..."


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(_run(argv))


def compile_main(argv: Sequence[str] | None = None) -> None:
    """``deepseek-compile`` is ``deepseek compile``."""
    sys.exit(_run(["compile", *(sys.argv[1:] if argv is None else argv)]))


def doctor_main(argv: Sequence[str] | None = None) -> None:
    """``deepseek-doctor`` is ``deepseek doctor``."""
    sys.exit(_run(["doctor", *(sys.argv[1:] if argv is None else argv)]))
