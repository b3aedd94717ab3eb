"""``deepseek bench``: benchmark a model across backends and batch sizes."""

from __future__ import annotations

import argparse

from .._cli_common import parse_shapes
from .._errors import invalid


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import count

    parser.add_argument("--model", "-m", required=True, help="model file or built-in name (resnet50, mobilenet_v2, bert-base, gpt2, smollm2)")
    parser.add_argument("--backends", default=None, help="comma-separated: eager, compile, onnxruntime, openvino, tvm "
                        "(default eager,onnxruntime); for a causal LM: eager, compile (static cache + torch.compile), "
                        "int8, int4 (weight-only), kv-int8, kv-int4 (compressed KV cache) (default eager,compile,int4,kv-int8)")
    parser.add_argument("--batch-size", "-b", action="append", default=None, help="batch size(s): repeat or comma-separate (default 1)")
    parser.add_argument("--baseline", default=None, help="backend the speedups are relative to (default: the first)")
    parser.add_argument("--runs", type=count(), default=30, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=count(0), default=5)
    parser.add_argument("--threads", type=count(), default=None, help="intra-op threads (default: physical cores)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    parser.add_argument("--inputs", default=None, metavar="SHAPE", help="input shape(s) for files that do not fix them, e.g. 1x3x224x224")
    parser.add_argument("--arch", default=None, help="architecture for state_dict/safetensors files, e.g. torchvision:resnet18")
    parser.add_argument("--trust-pickle", action="store_true", help="allow a pickled whole model (it can run code)")
    parser.add_argument("--new-tokens", type=count(), default=32, help="tokens generated per call for causal LMs")
    parser.add_argument("--no-isolate", action="store_true", help="measure in this process (peak memory less exact)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE", default=None, help="write a PNG chart")


def _batch_sizes(values: list[str] | None) -> list[int]:
    sizes: list[int] = []
    for v in values or ["1"]:
        for part in v.split(","):
            try:
                sizes.append(int(part))
            except ValueError:
                raise invalid("--batch-size", v, "positive integers, e.g. 1,8") from None
    return sizes


def run_cli(args: argparse.Namespace) -> int:
    import numpy as np

    from .benchmark import benchmark

    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends is not None else None
    shapes = parse_shapes(args.inputs)
    inputs = None
    if shapes:
        rng = np.random.default_rng(0)
        inputs = tuple(rng.standard_normal(s).astype(np.float32) for s in shapes)
    result = benchmark(args.model, inputs, backends=backends, batch_sizes=_batch_sizes(args.batch_size),
                       baseline=args.baseline or (backends[0] if backends else None), warmup=args.warmup, runs=args.runs,
                       threads=args.threads, device=args.device, isolate=not args.no_isolate, arch=args.arch,
                       trust_pickle=args.trust_pickle, new_tokens=args.new_tokens)
    from .._cli_common import console as make_console

    console = make_console()
    console.print(result.table())
    if args.json:
        result.save_json(args.json)
        console.print(f"wrote {args.json}")
    if args.plot:
        result.plot(args.plot)
        console.print(f"wrote {args.plot}")
    return 1 if all(r.status != "ok" for r in result.rows) else 0
