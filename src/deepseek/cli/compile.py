"""``deepseek export`` (ONNX with verification; PyTorch, or TensorFlow/Keras through tf2onnx) and ``deepseek compile``
(a deployable artifact)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._core.errors import invalid
from ..compile.pipeline import BACKENDS, PRECISIONS, TARGETS, CompileRecipe, compile_model
from ..models import resolve_model
from ._common import (
    add_model_arguments,
    console,
    count,
    declare_flag_names,
    declare_outputs,
    number,
    parse_shapes,
    refuse_arch_unless_weights,
)

__all__ = ["configure_compile_parser", "configure_export_parser", "run_compile_cli",
           "run_export_cli"]

# the library's argument names -> the flags that set them
FLAGS = {"target_arch": "--target-arch", "optimization_level": "--optimization-level", "output": "--output",
         "path": "--output", "inputs": "--inputs", "examples": "--inputs", "example_inputs": "--inputs",
         "backend": "--backend", "precision": "--precision", "quantize": "--quantize", "calib": "--calib",
         "samples": "--samples", "prune": "--prune", "opset": "--opset", "arch": "--arch"}


def configure_export_parser(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--output", "-o", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=count(), default=18, help="ONNX opset (default 18; the range the installed "
                                                                  "exporter supports is checked)")
    parser.add_argument("--static-batch", action="store_true", help="fix the batch dimension instead of making it dynamic")
    declare_outputs(parser, "output")
    declare_flag_names(parser, {**FLAGS, "source": "MODEL"})


def run_export_cli(args: argparse.Namespace) -> int:
    from ..compile import export_onnx
    from ..compile.tensorflow import export_tensorflow, is_tensorflow_model

    if Path(args.output).suffix.lower() != ".onnx":
        raise invalid("--output", args.output, "a file name ending in .onnx")
    if is_tensorflow_model(args.model):  # a .keras file or a SavedModel folder: tf2onnx, checked against TensorFlow
        for flag, value in (("--inputs", args.inputs), ("--arch", args.arch), ("--trust-pickle", args.trust_pickle)):
            if value:
                raise invalid(flag, value, "no value for a TensorFlow/Keras model (its file fixes its inputs and "
                                           "architecture)")
        done = export_tensorflow(args.model, args.output, opset=args.opset, dynamic_batch=not args.static_batch)
        console().print(f"[green]wrote[/] {done.path} ({done.size_bytes / 1e6:.2f} MB, opset {done.opset}) from the "
                        f"{done.kind.replace('_', ' ')} {args.model}; ONNX Runtime vs TensorFlow: max abs diff "
                        f"{done.max_abs_diff:.2e} (tolerance {done.tolerance:.2e})")
        return 0
    from ..runtime.onnx_export import check_opset

    check_opset(args.opset, argument="--opset")
    refuse_arch_unless_weights(args)
    model, examples, names, label = resolve_model(args.model, parse_shapes(args.inputs), arch=args.arch,
                                                  trust_pickle=args.trust_pickle)
    if isinstance(model, Path):
        raise invalid("model", args.model, "a PyTorch model (this file is already ONNX)")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224 (the file does not record them)")
    result = export_onnx(model, examples, args.output, input_names=names, dynamic_batch=not args.static_batch,
                         opset=args.opset)
    requested = f", not the requested {args.opset}: the exporter could not convert to it" if result.opset != args.opset else ""
    console().print(
        f"[green]wrote[/] {result.path} ({result.size_bytes / 1e6:.1f} MB, opset {result.opset}{requested}, "
        f"{'dynamic' if result.dynamic_batch else 'static'} batch) from {label}; ONNX Runtime vs PyTorch: "
        f"max abs diff {result.max_abs_diff:.2e} (tolerance {result.tolerance:.2e})"
    )
    return 0


def configure_compile_parser(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--target-arch", "--target", default="x86_64", choices=TARGETS, help="where the artifact will run "
                                                                                  "(default x86_64)")
    parser.add_argument("--optimization-level", "-O", type=int, default=None, choices=(0, 1, 2, 3),
                        help="ONNX Runtime (and TVM) graph optimization: 0 none, 1 basic graph rewrites, 2 extended "
                             "fusions, 3 everything incl. layout (default 2)")
    parser.add_argument("--output", "-o", required=True, help="the artifact to write")
    parser.add_argument("--backend", default=None, choices=sorted({b for v in BACKENDS.values() for b in v}),
                        help="x86_64: onnxruntime (default, .onnx) or inductor (AOTInductor package, .pt2); "
                             "arm64: executorch (default) or tvm; cuda: onnxruntime")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="float precision: auto = fp16 where safe for cuda (measured float16 range), fp32 elsewhere; bf16 with --backend inductor (x86 CPUs with AVX512-BF16 or AMX)")
    parser.add_argument("--quantize", default=None, choices=("int8", "int8-dynamic"),
                        help="int8: static INT8 calibrated on --calib (arm64: ExecuTorch's XNNPACK quantizer); "
                        "int8-dynamic: ONNX Runtime int8 MatMul/Gemm/Gather weights, activations quantized per call "
                        "(transformer encoders; no calibration)")
    parser.add_argument("--calib", default=None,
                        help="calibration data for --quantize int8 (and cuda's float16 range check): 'photos' "
                             "(bundled real photos, the default), a folder of images, or a .npy")
    parser.add_argument("--samples", "--calib-samples", type=count(), default=None, help="calibration samples for --quantize int8 (default 64)")
    parser.add_argument("--prune", type=number(above=0, below=1), default=None, metavar="RATIO",
                        help="remove this fraction of channels first (no fine-tuning: accuracy drops; see deepseek prune)")
    declare_outputs(parser, "output")
    declare_flag_names(parser, FLAGS)


def _check_compile_flags(args: argparse.Namespace) -> None:
    """Refuse flags the chosen build would ignore, before any work."""
    recipe = CompileRecipe(target_arch=args.target_arch, backend=args.backend, quantize=args.quantize,
                           precision=args.precision, prune=args.prune,
                           optimization_level=2 if args.optimization_level is None else args.optimization_level)
    fp16 = recipe.target_arch == "cuda" and recipe.precision in ("auto", "fp16")
    if args.calib is not None and recipe.quantize != "int8" and not fp16:
        raise invalid("--calib", args.calib, "--calib only with --quantize int8 (or a cuda float16 build)"
                      + (": int8-dynamic quantizes activations per call and needs no calibration data"
                         if recipe.quantize == "int8-dynamic" else ": nothing else calibrates"))
    if args.samples is not None and recipe.quantize != "int8":
        raise invalid("--samples", args.samples, "--samples only with --quantize int8 (the calibration sample count)")
    if args.optimization_level is not None and recipe.lowering in ("executorch", "inductor", "ort-int8", "openvino"):
        raise invalid("--optimization-level", args.optimization_level,
                      "--optimization-level only with the onnxruntime float builds and --backend tvm (this build "
                      f"({recipe.lowering}) has no such setting)")
    if args.inputs and Path(args.model).suffix.lower() == ".onnx" and recipe.lowering != "tvm":
        raise invalid("--inputs", args.inputs, "no shapes for an ONNX model (its inputs are in the file; only "
                                               "--target-arch arm64 --backend tvm fixes free dimensions with them)")
    refuse_arch_unless_weights(args)


def run_compile_cli(args: argparse.Namespace) -> int:
    _check_compile_flags(args)
    result = compile_model(args.model, target_arch=args.target_arch,
                           optimization_level=2 if args.optimization_level is None else args.optimization_level,
                           output=args.output, inputs=parse_shapes(args.inputs), arch=args.arch,
                           trust_pickle=args.trust_pickle, quantize=args.quantize, calib=args.calib,
                           samples=args.samples, prune=args.prune, backend=args.backend, precision=args.precision)
    out = console()
    for line in result.summary():
        below = result.below_floor and line == result.get("int8_summary")
        out.print(line, style="bold red" if below else None, markup=False, highlight=False)
    return 0
