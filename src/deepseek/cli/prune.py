"""``deepseek prune``: remove channels (structured), verify, measure dense vs pruned latency, write the result."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from .._core.errors import InvalidArgumentError, invalid
from ..pruning.structured import IMPORTANCES

OUTPUT_SUFFIXES = (".onnx", ".pt2")
# library argument -> the flag a user of the command line wrote
FLAGS = {"ignore": "--ignore", "ratio": "--ratio", "round_to": "--round-to", "steps": "--steps",
         "importance": "--importance", "example_inputs": "--inputs"}


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
    from ._common import add_model_arguments, count, declare_outputs, number

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


def run_cli(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except InvalidArgumentError as e:  # the library names its Python argument: say the flag the user wrote
        argument, sep, rest = str(e).partition(": ")
        if sep and argument in FLAGS:
            raise InvalidArgumentError(f"{FLAGS[argument]}: {rest}") from e
        raise


def _run(args: argparse.Namespace) -> int:
    import torch

    from .._core.atomic import atomic_path, check_output
    from .._core.timing import measure
    from ..assets.models import resolve_model
    from ..pruning.structured import prune_channels
    from ._common import console, parse_shapes

    if args.output:  # also when run_cli is called without the command line's checks
        check_output(args.output, argument="--output", inputs=[args.model])
    model, examples, names, label = resolve_model(args.model, parse_shapes(args.inputs), arch=args.arch,
                                                  trust_pickle=args.trust_pickle)
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", args.model, "a PyTorch model (built-in name, .pt2, TorchScript, or state_dict with --arch); "
                                          "an ONNX graph cannot be pruned structurally")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224")
    dense = copy.deepcopy(model).eval()
    result = prune_channels(model, args.ratio, examples, importance=args.importance, steps=args.steps,
                            round_to=args.round_to, ignore=tuple(args.ignore), inplace=True)
    out = console()
    out.print(str(result))
    with torch.no_grad():
        before = measure(lambda: dense(*examples), warmup=2, runs=args.runs).median_ms
        after = measure(lambda: model(*examples), warmup=2, runs=args.runs).median_ms
    out.print(f"eager latency (median of {args.runs}, this machine): dense {before:.2f} ms, pruned {after:.2f} ms "
              f"→ {before / after:.2f}x")
    if args.output:
        path = Path(args.output)
        if path.suffix.lower() == ".onnx":
            from ..runtime.onnx_export import export_onnx

            written = export_onnx(model, examples, path, input_names=names).path  # verified against PyTorch
        else:
            try:
                exported = torch.export.export(model, examples)
            except Exception as e:  # the pruned model runs in eager mode; torch.export could not capture it
                raise invalid("--output", str(path), f"a .onnx file: torch.export cannot capture the pruned "
                                                    f"{type(model).__name__} ({type(e).__name__}: {str(e)[:200]})") from e
            with atomic_path(path) as tmp:
                torch.export.save(exported, tmp)
            written = path
        out.print(f"[green]wrote[/] {written} (pruned {label})")
    return 0
