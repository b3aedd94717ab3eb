"""``deepseek quantize``: static INT8 for ONNX Runtime from real calibration data, with a per-layer report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._errors import MissingDependencyError, invalid
from .calibration_data import load_calibration


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import add_model_arguments, count

    add_model_arguments(parser)
    parser.add_argument("--calib", default="photos",
                        help="calibration data: 'photos' (bundled real photos), a folder of images, or a .npy array")
    parser.add_argument("--method", default="static", choices=("static",),
                        help="static INT8 (dynamic and weight-only schemes are not in this version)")
    parser.add_argument("--calibration-method", default="percentile", choices=("minmax", "percentile", "entropy"))
    parser.add_argument("--keep-fp32", default="0", help="how many of the activations most harmful to quantize stay in float, or 'auto'")
    parser.add_argument("--samples", type=count(), default=128, help="calibration samples to use")
    parser.add_argument("--output", "-o", default=None, help="the INT8 .onnx file to write")
    parser.add_argument("--report", default=None, metavar="DIR", help="write report.json and report.png here")


def run_cli(args: argparse.Namespace) -> int:
    from .._atomic import refuse_overwrite_input
    from .._cli_common import console, parse_shapes, resolve_model

    if not args.output and not args.report:
        raise invalid("--output/--report", None, "at least one of them")
    keep: int | str = args.keep_fp32 if args.keep_fp32 == "auto" else _count(args.keep_fp32)
    if args.output:
        refuse_overwrite_input(args.output, args.model)
    shapes = parse_shapes(args.inputs)
    if Path(args.model).suffix.lower() in (".pt2", ".onnx") or _is_torchscript(args.model):
        raise invalid("model", args.model, "a model with its layers intact — a built-in name, a state_dict/.safetensors "
                                          "with --arch, or a pickled nn.Module with --trust-pickle (.pt2, TorchScript "
                                          "and ONNX files hold flattened graphs that layer-wise quantization cannot edit)")
    model, _, names, label = resolve_model(args.model, shapes, arch=args.arch, trust_pickle=args.trust_pickle)
    calib = load_calibration(args.calib, args.samples, shapes[0] if shapes else None)
    out = console()
    if args.report:
        from .report import quantization_report

        report = quantization_report(model, calib[: min(len(calib), 32)])
        folder = Path(args.report)
        report.save_json(folder / "report.json")
        report.plot(folder / "report.png")
        out.print(report.table())
        out.print(f"keep in higher precision: {', '.join(report.keep) or 'none'}; wrote {folder}/report.json, report.png")
    if args.output:
        from .onnx_static import quantize_static_onnx

        try:
            result = quantize_static_onnx(model, calib, args.output, method=args.calibration_method, keep_fp32=keep,
                                          input_names=names)
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime's quantization tools are missing: pip install onnxruntime") from exc
        out.print(f"[green]wrote[/] {result.path} from {label}: {result.size_bytes / 1e6:.1f} MB (FP32 {result.fp32_size_bytes / 1e6:.1f} MB), "
                  f"top-1 agreement with FP32 on the {result.calibration_samples} calibration inputs "
                  f"{result.calibration_agreement:.1%} (output SQNR {result.calibration_sqnr_db:.1f} dB), "
                  f"{result.bias_corrected_layers} biases corrected, activations left in float: "
                  f"{', '.join(result.float_activations) or 'none'}")
    return 0


def _is_torchscript(model: str) -> bool:
    path = Path(model)
    if not path.is_file():
        return False
    from ..runtime.artifacts import detect_kind

    return detect_kind(path) == "torchscript"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise invalid("--keep-fp32", text, "a count >= 0 or 'auto'") from None
    if value < 0:
        raise invalid("--keep-fp32", text, "a count >= 0 or 'auto'")
    return value
