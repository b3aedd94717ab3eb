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
    parser.add_argument("--quantize", default=None, choices=("int8",),
                        help="static INT8 calibrated on --calib (arm64: ExecuTorch's XNNPACK quantizer)")
    parser.add_argument("--calib", default="photos",
                        help="calibration data for --quantize: 'photos' (bundled real photos), a folder of images, or a .npy")
    parser.add_argument("--samples", type=int, default=64, help="calibration samples for --quantize")
    parser.add_argument("--prune", type=float, default=None, metavar="RATIO",
                        help="remove this fraction of channels first (no fine-tuning: accuracy drops; see deepseek prune)")


def run_compile_cli(args: argparse.Namespace) -> int:
    result = compile_model(args.model, target_arch=args.target_arch, optimization_level=args.optimization_level,
                           output=args.output, inputs=parse_shapes(args.inputs), arch=args.arch,
                           trust_pickle=args.trust_pickle, quantize=args.quantize, calib=args.calib, samples=args.samples,
                           prune=args.prune)
    out = console()
    if result.get("pruned"):
        p = result["pruned"]
        out.print(f"[yellow]pruned[/] {p['ratio']:.0%} of channels: parameters {p['param_ratio']:.0%}, MACs {p['mac_ratio']:.0%} "
                  "of the original, not fine-tuned — expect accuracy to drop")
    out.print(f"[bold]backend[/]: {result['backend']} — {result['why']}")
    if result["target_arch"] == "x86_64" and result.get("precision") == "int8":
        out.print(f"[green]wrote[/] {result['output']} (INT8, {result['size_bytes'] / 1e6:.1f} MB, FP32 "
                  f"{result['fp32_size_bytes'] / 1e6:.1f} MB); top-1 agreement with FP32 PyTorch "
                  f"{result['int8_agreement']:.0%} on {result['checked_samples']} held-out samples")
        return 0
    if result["target_arch"] == "arm64":
        check = (f"verified under {result['verified_under']} against PyTorch: max abs diff {result['max_abs_diff']:.2e} "
                 f"(tolerance {result['tolerance']:.2e})" if result["verified_under"] else
                 "[yellow]NOT verified[/]: install qemu-user to run it under emulation")
        if result["precision"] == "int8" and result["verified_under"]:
            check = (f"verified under {result['verified_under']}: top-1 agreement with FP32 PyTorch "
                     f"{result['int8_agreement']:.0%} on {result['checked_samples']} held-out samples, "
                     f"max abs diff {result['max_abs_diff']:.3g}")
        out.print(f"[green]wrote[/] {result['output']} and {result['bundle']}/ ({result['precision']} program "
                  f"{result['program_bytes'] / 1e6:.1f} MB, runtime libraries, C header, example runner); {check}")
        return 0
    out.print(
        f"[green]wrote[/] {result['output']} ({result['size_bytes'] / 1e6:.1f} MB, ORT level {result['ort_level']}); "
        f"verified against the source model: max abs diff {result['max_abs_diff']:.2e} (tolerance {result['tolerance']:.2e})"
    )
    return 0


def _resolve(model: str, inputs: list[tuple[int, ...]] | None, arch: str | None, trust_pickle: bool,
             prune: float | None) -> tuple[Any, Any, Any, dict[str, Any] | None]:
    """The model, its example inputs and input names — with ``prune`` of its channels removed first."""
    module, examples, names, _ = resolve_model(model, inputs, arch=arch, trust_pickle=trust_pickle)
    if prune is None:
        return module, examples, names, None
    if isinstance(module, Path):
        raise invalid("--prune", prune, "a PyTorch model (channels are removed before export, not from ONNX)")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224 (pruning traces the model)")
    from ..pruning import prune_channels

    result = prune_channels(module, prune, tuple(examples), round_to=8)
    return result.model, examples, names, {"ratio": prune, "param_ratio": result.param_ratio, "mac_ratio": result.mac_ratio}


def _calibration(calib: str, samples: int, examples: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """(calibration batches, held-out samples that check the INT8 artifact) from ``--calib``."""
    from ..quantization.cli import load_calibration

    data = load_calibration(calib, samples, tuple(examples[0].shape))
    if tuple(data.shape[1:]) != tuple(examples[0].shape[1:]):
        raise invalid("--calib", calib, f"inputs of shape {list(examples[0].shape[1:])} per sample (got {list(data.shape[1:])})")
    held_out = min(8, len(data) // 4)  # agreement is checked on samples the quantizer did not see
    rows = examples[0].shape[0]  # a program exported at a fixed batch takes only that batch
    return [b for b in data[held_out:].split(rows) if b.shape[0] == rows], data[:held_out]


def _compile_x86_int8(model: str, *, output: str, inputs: list[tuple[int, ...]] | None, arch: str | None,
                      trust_pickle: bool, calib: str, samples: int, prune: float | None) -> dict[str, Any]:
    from ..quantization import quantize_static_onnx
    from ..runtime import load

    if not str(output).endswith(".onnx"):
        raise invalid("--output", output, "a .onnx file for target x86_64")
    refuse_overwrite_input(output, model)
    module, examples, names, pruned = _resolve(model, inputs, arch, trust_pickle, prune)
    if isinstance(module, Path):
        raise invalid("model", model, "a PyTorch model for --quantize int8 (calibration runs the FP32 model)")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224")
    calibration, check = _calibration(calib, samples, examples)
    result = quantize_static_onnx(module, calibration, output, method="percentile", input_names=names)
    import torch

    checked = check if len(check) else calibration[0]
    predictor, rows = load(result.path), examples[0].shape[0]
    chunks = [c for c in checked.split(rows) if c.shape[0] == rows]
    with torch.no_grad():
        agree = [torch.from_numpy(predictor(c.numpy())).argmax(-1) == module(c).argmax(-1) for c in chunks]
    agreement = float(torch.cat(agree).float().mean())
    return {"output": str(output), "backend": "onnxruntime", "target_arch": "x86_64", "precision": "int8",
            "why": "ONNX Runtime static INT8, uint8 activations x int8 per-channel weights (U8S8): the layout its "
                   "VNNI/AMX kernels run fast on x86 (S8S8 measured no faster than FP32)",
            "size_bytes": result.size_bytes, "fp32_size_bytes": result.fp32_size_bytes, "int8_agreement": agreement,
            "checked_samples": sum(len(c) for c in chunks), "calibration_agreement": result.calibration_agreement,
            "pruned": pruned}


def _compile_arm64(model: str, *, output: str, inputs: list[tuple[int, ...]] | None, arch: str | None,
                   trust_pickle: bool, quantize: str | None, calib: str, samples: int, prune: float | None) -> dict[str, Any]:
    from .arm64 import build_arm64

    if not str(output).endswith(".so"):
        raise invalid("--output", output, "a .so file for target arm64 (e.g. model_arm.so)")
    refuse_overwrite_input(output, model)
    module, examples, _, pruned = _resolve(model, inputs, arch, trust_pickle, prune)
    if isinstance(module, Path):
        raise invalid("model", model, "a PyTorch model (.pt2, TorchScript, state_dict + --arch) for arm64: ExecuTorch "
                                      "lowers from torch.export, not from ONNX")
    if examples is None:
        raise invalid("--inputs", None, "the input shape(s), e.g. --inputs 1x3x224x224")
    calibration, check = _calibration(calib, samples, examples) if quantize == "int8" else (None, None)
    built = build_arm64(module, tuple(examples), output, calibration=calibration, check=[check] if check is not None and len(check) else None)
    verified = built.max_abs_diff is not None
    return {"output": str(built.library), "bundle": str(built.bundle), "backend": "executorch+xnnpack",
            "why": "ExecuTorch with the XNNPACK delegate: a torch-free C++ runtime, the fastest arm64 path in our "
                   "trials (TVM generated real code but ran 3-8x slower untuned)",
            "ort_level": None, "size_bytes": built.library.stat().st_size, "program_bytes": built.program_bytes,
            "max_abs_diff": built.max_abs_diff if verified else float("nan"), "tolerance": built.tolerance,
            "verified_under": f"qemu-aarch64 -cpu {built.cpu}" if verified else None, "target_arch": "arm64",
            "precision": built.precision, "int8_agreement": built.int8_agreement,
            "checked_samples": (len(check) or min(8, samples)) if calibration else 1, "pruned": pruned}


def compile_model(model: str, *, target_arch: str, optimization_level: int, output: str,
                  inputs: list[tuple[int, ...]] | None = None, arch: str | None = None,
                  trust_pickle: bool = False, quantize: str | None = None, calib: str = "photos",
                  samples: int = 64, prune: float | None = None) -> dict[str, Any]:
    """Compile ``model`` (a file or built-in name) into a verified artifact for ``target_arch``.

    ``prune`` removes that fraction of channels first (:func:`deepseek.pruning.prune_channels`, no fine-tuning:
    expect accuracy to drop — fine-tune in Python with its ``finetune=`` callback for a usable model); the
    artifact is verified against the pruned model."""
    import onnxruntime as ort  # noqa: F401  (fail early with a clear import error)

    from .onnx_export import export_onnx, verify_onnx
    from .ort_optimize import optimize_onnx

    if target_arch not in TARGETS:
        raise invalid("--target-arch", target_arch, f"one of {TARGETS}")
    if quantize not in (None, "int8"):
        raise invalid("--quantize", quantize, "int8")
    if target_arch == "arm64":
        return _compile_arm64(model, output=output, inputs=inputs, arch=arch, trust_pickle=trust_pickle,
                              quantize=quantize, calib=calib, samples=samples, prune=prune)
    if quantize:
        if target_arch != "x86_64":
            raise invalid("--quantize", quantize, "a target of x86_64 or arm64 (CUDA INT8 is not in this version)")
        return _compile_x86_int8(model, output=output, inputs=inputs, arch=arch, trust_pickle=trust_pickle,
                                 calib=calib, samples=samples, prune=prune)
    if not str(output).endswith(".onnx"):
        raise invalid("--output", output, f"a .onnx file for target {target_arch}")
    refuse_overwrite_input(output, model)
    module, examples, names, pruned = _resolve(model, inputs, arch, trust_pickle, prune)
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
            "max_abs_diff": diff, "tolerance": tol, "target_arch": target_arch, "pruned": pruned}
