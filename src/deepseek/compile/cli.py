"""``deepseek export`` (ONNX with verification) and ``deepseek compile`` (a deployable artifact)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._atomic import atomic_path, refuse_overwrite_input
from .._cli_common import add_model_arguments, console, parse_shapes, resolve_model
from .._errors import invalid

TARGETS = ("x86_64", "arm64", "cuda")


def configure_export_parser(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--output", "-o", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--static-batch", action="store_true", help="fix the batch dimension instead of making it dynamic")


def run_export_cli(args: argparse.Namespace) -> int:
    from . import export_onnx

    refuse_overwrite_input(args.output, args.model)
    model, examples, names, label = resolve_model(args.model, parse_shapes(args.inputs), arch=args.arch, trust_pickle=args.trust_pickle)
    if isinstance(model, Path):
        raise invalid("model", args.model, "a PyTorch model (this file is already ONNX)")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224 (the file does not record them)")
    result = export_onnx(model, examples, args.output, input_names=names, dynamic_batch=not args.static_batch, opset=args.opset)
    console().print(
        f"[green]wrote[/] {result.path} ({result.size_bytes / 1e6:.1f} MB, opset {result.opset}, "
        f"{'dynamic' if result.dynamic_batch else 'static'} batch) from {label}; ONNX Runtime vs PyTorch: "
        f"max abs diff {result.max_abs_diff:.2e} (tolerance {result.tolerance:.2e})"
    )
    return 0


def configure_compile_parser(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--target-arch", required=True, choices=TARGETS, help="where the artifact will run")
    parser.add_argument("--optimization-level", "-O", type=int, default=2, choices=(0, 1, 2, 3),
                        help="0 none, 1 basic graph rewrites, 2 extended fusions, 3 everything incl. layout (default 2)")
    parser.add_argument("--output", "-o", required=True, help="the artifact to write")


def run_compile_cli(args: argparse.Namespace) -> int:
    result = compile_model(args.model, target_arch=args.target_arch, optimization_level=args.optimization_level,
                           output=args.output, inputs=parse_shapes(args.inputs), arch=args.arch,
                           trust_pickle=args.trust_pickle)
    out = console()
    out.print(f"[bold]backend[/]: {result['backend']} — {result['why']}")
    out.print(
        f"[green]wrote[/] {result['output']} ({result['size_bytes'] / 1e6:.1f} MB, ORT level {result['ort_level']}); "
        f"verified against the source model: max abs diff {result['max_abs_diff']:.2e} (tolerance {result['tolerance']:.2e})"
    )
    return 0


def compile_model(model: str, *, target_arch: str, optimization_level: int, output: str,
                  inputs: list[tuple[int, ...]] | None = None, arch: str | None = None,
                  trust_pickle: bool = False) -> dict[str, Any]:
    """Compile ``model`` (a file or built-in name) into a verified artifact for ``target_arch``."""
    import onnxruntime as ort  # noqa: F401  (fail early with a clear import error)

    from .onnx_export import export_onnx, verify_onnx
    from .ort_optimize import optimize_onnx

    if target_arch not in TARGETS:
        raise invalid("--target-arch", target_arch, f"one of {TARGETS}")
    if target_arch == "arm64":
        raise invalid("--target-arch", target_arch, "x86_64 or cuda in this version (the arm64 bundle is not built yet)")
    if not str(output).endswith(".onnx"):
        raise invalid("--output", output, f"a .onnx file for target {target_arch}")
    refuse_overwrite_input(output, model)
    module, examples, names, _ = resolve_model(model, inputs, arch=arch, trust_pickle=trust_pickle)
    workdir = Path(tempfile.mkdtemp(prefix="deepseek-compile-"))
    try:
        if isinstance(module, Path):
            source_onnx, reference = module, None
        else:
            if examples is None:
                raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224")
            source_onnx = export_onnx(module, examples, workdir / "exported.onnx", input_names=names).path
            reference = module
        with atomic_path(output) as tmp:
            level = optimize_onnx(source_onnx, tmp.with_suffix(".onnx"), level=optimization_level, target_arch=target_arch)
            tmp.with_suffix(".onnx").replace(tmp)
            diff = tol = float("nan")
            if reference is not None:
                diff, tol = verify_onnx(tmp, reference, examples)
            size = tmp.stat().st_size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    why = ("ONNX Runtime: the fastest fp32 runtime measured on x86 CPUs (benchmarks/bench_runtimes.py)"
           if target_arch == "x86_64" else "ONNX Runtime with the CUDA / TensorRT execution providers")
    return {"output": str(output), "backend": "onnxruntime", "why": why, "ort_level": level, "size_bytes": size,
            "max_abs_diff": diff, "tolerance": tol, "target_arch": target_arch}
