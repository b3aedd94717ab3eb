"""``deepseek prune``: remove channels (structured), verify, measure dense vs pruned latency, write the result."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from .._errors import invalid
from .structured import IMPORTANCES

OUTPUT_SUFFIXES = (".onnx", ".pt2")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import add_model_arguments, count

    add_model_arguments(parser)
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of channels to remove (0 <= r < 1)")
    parser.add_argument("--importance", default="l1", choices=[i for i in IMPORTANCES if i != "taylor"],
                        help="how channels are ranked (taylor needs training data: use the Python API)")
    parser.add_argument("--steps", type=count(), default=1, help="prune progressively in this many steps")
    parser.add_argument("--round-to", type=count(), default=None, help="keep channel counts multiples of this (8, 16)")
    parser.add_argument("--ignore", action="append", default=[], help="a layer never pruned (name, re:regex or class); repeatable")
    parser.add_argument("--runs", type=count(), default=10, help="timed calls per model for the latency comparison")
    parser.add_argument("--output", "-o", default=None, help="write the pruned model: .onnx (verified) or .pt2 (torch.export)")


def run_cli(args: argparse.Namespace) -> int:
    import torch

    from .._atomic import atomic_path, refuse_overwrite_input
    from .._cli_common import console, parse_shapes, resolve_model
    from ..bench import measure
    from .structured import prune_channels

    if args.output:
        if Path(args.output).suffix.lower() not in OUTPUT_SUFFIXES:
            raise invalid("--output", args.output, f"a file ending in {' or '.join(OUTPUT_SUFFIXES)}")
        refuse_overwrite_input(args.output, args.model)
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
            from ..compile import export_onnx

            written = export_onnx(model, examples, path, input_names=names).path  # verified against PyTorch
        else:
            exported = torch.export.export(model, examples)
            with atomic_path(path) as tmp:
                torch.export.save(exported, tmp)
            written = path
        out.print(f"[green]wrote[/] {written} (pruned {label})")
    return 0
