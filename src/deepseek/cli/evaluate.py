"""``deepseek evaluate``: parses the flags, calls :func:`deepseek.evaluate`, prints the result."""

from __future__ import annotations

import argparse

from ..evaluation import DATASETS, evaluate


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ..runtime.backends import ALIASES
    from ._common import count, declare_outputs, number

    parser.add_argument("--model", "-m", required=True, help="model file (.onnx, .pt2, .pt, state_dict with --arch)")
    parser.add_argument("--data", default=None, choices=DATASETS, help="data set (default: inferred from the input shape)")
    parser.add_argument("--reference", default=None, help="reference model for --data photos (default: FP32 MobileNetV2)")
    parser.add_argument("--backend", default=None, choices=sorted(ALIASES),
                        help="eager, compile or onnxruntime (default: by file kind)")
    parser.add_argument("--min-accuracy", type=number(above=0, maximum=1), default=None,
                        help="fail (exit 1) below this fraction, e.g. 0.9")
    parser.add_argument("--arch", default=None, help="architecture for state_dict/safetensors files")
    parser.add_argument("--trust-pickle", action="store_true")
    parser.add_argument("--batch-size", type=count(), default=64)
    parser.add_argument("--limit", type=count(), default=None, help="evaluate only the first N samples")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the result as JSON")
    declare_outputs(parser, "json")


def run_cli(args: argparse.Namespace) -> int:
    from ._common import console as make_console

    result = evaluate(args.model, data=args.data, reference=args.reference, backend=args.backend,
                      min_accuracy=args.min_accuracy, batch_size=args.batch_size, limit=args.limit, arch=args.arch,
                      trust_pickle=args.trust_pickle)
    console = make_console()
    console.print(f"[bold]{result.model}[/] on {result.data} ({result.samples} samples, {result.backend}): "
                  f"{result.metric} {result.value:.4f}; latency {result.latency_ms:.2f} ms (batch 1, median), "
                  f"{result.throughput:.0f} items/s")
    for k, v in result.extra.items():
        if k != "per_class_accuracy":
            console.print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    if args.json:
        result.save_json(args.json)
    if result.passed is False:
        console.print(f"[red]FAIL[/]: {result.metric} {result.value:.4f} < {result.min_accuracy:.4f}")
        return 1
    if result.passed:
        console.print(f"[green]PASS[/]: {result.metric} {result.value:.4f} >= {result.min_accuracy:.4f}")
    return 0
