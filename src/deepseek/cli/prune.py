"""``deepseek prune``: remove channels (structured), verify, measure dense vs pruned latency, write the result."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._core.errors import InvalidArgumentError
from ..pruning.structured import IMPORTANCES

OUTPUT_SUFFIXES = (".onnx", ".pt2")  # as deepseek.pruning.workflow (not imported here: --help stays fast)


def _pattern(text: str) -> str:
    """An argparse ``type``: a layer name, ``re:REGEX`` (a valid expression) or a class name."""
    from .._core.select import check_patterns

    try:
        return check_patterns(text, argument="--ignore")[0]
    except InvalidArgumentError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--ignore: ")) from None


def _output(text: str) -> str:
    """An argparse ``type``: a file path ending in .onnx or .pt2."""
    if Path(text).suffix.lower() not in OUTPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"expected a file ending in {' or '.join(OUTPUT_SUFFIXES)}, got {text!r}")
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import add_model_arguments, count, declare_flag_names, declare_outputs, number

    add_model_arguments(parser)
    parser.add_argument("--ratio", type=number(above=0, below=1), default=0.5, help="fraction of channels to remove (0 < r < 1)")
    parser.add_argument("--importance", default="l1", choices=[i for i in IMPORTANCES if i != "taylor"],
                        help="how channels are ranked (taylor needs training data: use the Python API)")
    parser.add_argument("--steps", type=count(), default=1, help="prune progressively in this many steps (>= 1)")
    parser.add_argument("--round-to", type=count(), default=None,
                        help="keep channel counts multiples of this (>= 1; 8, 16)")
    parser.add_argument("--ignore", action="append", default=[], type=_pattern, metavar="LAYER",
                        help="a layer never pruned (name, re:regex or class name; it must match a layer); repeatable")
    parser.add_argument("--runs", type=count(), default=10, help="timed calls per model for the latency comparison (>= 1)")
    parser.add_argument("--output", "-o", default=None, type=_output,
                        help="write the pruned model: .onnx (verified) or .pt2 (torch.export)")
    declare_outputs(parser, "output")
    declare_flag_names(parser, {"example_inputs": "--inputs", "source": "MODEL"})


def run_cli(args: argparse.Namespace) -> int:
    from ..pruning.workflow import prune_model
    from ._common import console, parse_shapes

    done = prune_model(args.model, args.ratio, inputs=parse_shapes(args.inputs), arch=args.arch,
                       trust_pickle=args.trust_pickle, importance=args.importance, steps=args.steps,
                       round_to=args.round_to, ignore=args.ignore, runs=args.runs, output=args.output)
    for line in done.summary():
        console().print(line, markup=False, highlight=False)
    return 0
