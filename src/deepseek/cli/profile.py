"""``deepseek profile MODEL``: parses the flags, calls :func:`deepseek.bench.profile.profile`, prints its tables."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ..runtime.backends import ALIASES
    from ._common import add_model_arguments, count, declare_outputs

    add_model_arguments(parser)
    parser.add_argument("--backend", default=None, choices=sorted(ALIASES),
                        help="eager, compile or onnxruntime (default: onnxruntime for an ONNX file, else eager)")
    parser.add_argument("--batch-size", "-b", type=count(), default=1)
    parser.add_argument("--runs", type=count(), default=10)
    parser.add_argument("--warmup", type=count(0), default=3)
    parser.add_argument("--top", type=count(), default=15, help="rows shown per table")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the full profile as JSON")
    parser.add_argument("--png", metavar="FILE", default=None, help="write a chart of the top operators and layers")
    declare_outputs(parser, "json", "png")


def run_cli(args: argparse.Namespace) -> int:
    import numpy as np

    from ..bench._flags import require_matplotlib
    from ._common import parse_shapes

    if args.png:
        require_matplotlib("--png")
    shapes = parse_shapes(args.inputs)
    inputs = tuple(np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in shapes) if shapes else None
    from ..bench.profile import profile

    result = profile(args.model, inputs, backend=args.backend, batch_size=args.batch_size, runs=args.runs,
                     warmup=args.warmup, arch=args.arch, trust_pickle=args.trust_pickle)
    from ._common import console as make_console

    console = make_console()
    console.print(result.table("operators", args.top))
    if result.layers:
        console.print(result.table("layers", args.top))
    console.print(result.summary())
    if args.png:
        result.plot(args.png, top=args.top)
        console.print(f"wrote {args.png}")
    if args.json:
        result.save_json(args.json)
        console.print(f"wrote {args.json}")
    return 0
