"""``deepseek bench``: benchmark a model across backends and batch sizes."""

from __future__ import annotations

import argparse

from ._common import parse_shapes

# library argument -> the flag that sets it, for errors raised by deepseek.benchmark
FLAGS = {"backends": "--backends", "baseline": "--baseline", "batch_sizes": "--batch-size", "runs": "--runs",
         "warmup": "--warmup", "threads": "--threads", "device": "--device", "inputs": "--inputs",
         "model": "MODEL", "arch": "--arch", "new_tokens": "--new-tokens"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ..bench._flags import backend_names, batch_sizes
    from ..bench.benchmark import GENERATION_VARIANTS, PEERS
    from ..runtime.backends import ALIASES, DEVICES
    from ._common import count, declare_flag_names, declare_outputs

    known, shown = [*ALIASES, *PEERS, *GENERATION_VARIANTS], [*ALIASES.values(), *PEERS, *GENERATION_VARIANTS]
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="model file or built-in name (resnet50, mobilenet_v2, bert-base, gpt2, smollm2)")
    parser.add_argument("--model", "-m", dest="model_option", default=None, metavar="MODEL",
                        help="the same as MODEL (the older spelling)")
    parser.add_argument("--backends", type=backend_names(known, shown), default=None,
                        help="comma-separated: eager, compile, onnxruntime, openvino (the openvino extra), tvm "
                        "(default eager,onnxruntime; openvino for an OpenVINO IR .xml); for a causal LM: eager, compile (static cache + torch.compile), "
                        "int8, int4 (weight-only), kv-int8, kv-int4 (compressed KV cache) (default eager,compile,int4,kv-int8)")
    parser.add_argument("--batch-size", "-b", type=batch_sizes, action="append", default=None,
                        help="batch size(s): repeat or comma-separate (default 1)")
    parser.add_argument("--baseline", type=backend_names(known, shown), default=None,
                        help="backend the speedups are relative to (default: the first)")
    parser.add_argument("--runs", type=count(), default=30, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=count(0), default=5)
    parser.add_argument("--threads", type=count(), default=None, help="intra-op threads (default: physical cores)")
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--inputs", default=None, metavar="SHAPE", help="input shape(s) for files that do not fix them, e.g. 1x3x224x224")
    parser.add_argument("--arch", default=None, help="architecture for state_dict/safetensors files, e.g. torchvision:resnet18")
    parser.add_argument("--trust-pickle", action="store_true", help="allow a pickled whole model (it can run code)")
    parser.add_argument("--new-tokens", type=count(), default=32, help="tokens generated per call for causal LMs")
    parser.add_argument("--no-isolate", action="store_true", help="measure in this process (peak memory less exact)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE", default=None, help="write a PNG chart")
    declare_outputs(parser, "json", "plot")
    declare_flag_names(parser, FLAGS)


def run_cli(args: argparse.Namespace) -> int:
    import numpy as np

    from .._core.errors import invalid
    from ..bench._flags import require_matplotlib
    from ..bench.benchmark import benchmark

    if args.model is not None and args.model_option is not None and args.model != args.model_option:
        raise invalid("--model", args.model_option, f"the same model as MODEL ({args.model}), or only one of them")
    model = args.model if args.model is not None else args.model_option
    if args.model is None and model is not None:  # errors about the model name the spelling the user typed
        args._flag_names = {**(getattr(args, "_flag_names", None) or {}), "model": "--model"}
    if model is None:
        raise invalid("MODEL", None, "a model file or built-in name (resnet50, mobilenet_v2, bert-base, gpt2, smollm2)")
    if args.baseline is not None and len(args.baseline) != 1:
        raise invalid("--baseline", ",".join(args.baseline), "one backend")
    if args.plot:
        require_matplotlib("--plot")
    shapes = parse_shapes(args.inputs)
    rng = np.random.default_rng(0)
    inputs = tuple(rng.standard_normal(s).astype(np.float32) for s in shapes) if shapes else None
    sizes = [b for group in args.batch_size or [[1]] for b in group]
    result = benchmark(model, inputs, backends=args.backends, batch_sizes=sizes,
                       baseline=args.baseline[0] if args.baseline else None, warmup=args.warmup,
                       runs=args.runs, threads=args.threads, device=args.device, isolate=not args.no_isolate,
                       arch=args.arch, trust_pickle=args.trust_pickle, new_tokens=args.new_tokens)
    from ._common import console as make_console

    console = make_console()
    console.print(result.table())
    if args.plot:
        result.plot(args.plot)
        console.print(f"wrote {args.plot}")
    if args.json:
        result.save_json(args.json)
        console.print(f"wrote {args.json}")
    return 1 if all(r.status != "ok" for r in result.rows) else 0
