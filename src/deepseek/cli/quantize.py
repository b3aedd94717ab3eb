"""``deepseek quantize``: static INT8 for ONNX Runtime from real calibration data, with a per-layer report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._core.errors import MissingDependencyError, invalid
from ..quantization.precision import INT8_FORMATS

# the library's argument names -> the flags that set them
FLAGS = {"calib": "--calib", "calibration": "--calib", "samples": "--samples", "output": "--output", "keep_fp32": "--keep-fp32",
         "method": "--calibration-method", "inputs": "--inputs", "arch": "--arch"}


def _keep_fp32(text: str) -> int | str:
    """An argparse ``type``: a count >= 0 or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 0 or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0 or 'auto', got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import add_model_arguments, count, declare_flag_names, declare_outputs, number

    add_model_arguments(parser)
    parser.add_argument("--calib", default="photos",
                        help="calibration data: 'photos' (bundled real photos), a folder of images, or a .npy array")
    parser.add_argument("--method", default="static", choices=("static",),
                        help="static INT8 (dynamic and weight-only schemes are not in this version)")
    parser.add_argument("--calibration-method", default=None, choices=("minmax", "percentile", "entropy"),
                        help="how --output's activation ranges are calibrated (default percentile)")
    parser.add_argument("--keep-fp32", default=None, type=_keep_fp32,
                        help="how many of the activations most harmful to quantize stay in float in --output, or "
                             "'auto' (default 0)")
    parser.add_argument("--int8-format", default="auto", choices=("auto", *INT8_FORMATS),
                        help="activation x weight layout (default: the one this CPU class calls for; see deepseek doctor)")
    parser.add_argument("--min-agreement", type=number(above=0, maximum=1), default=0.95,
                        help="floor on top-1 agreement with FP32 over held-out calibration samples (classifiers)")
    parser.add_argument("--samples", type=count(), default=128, help="calibration samples to use")
    parser.add_argument("--output", "-o", default=None, help="the INT8 .onnx file to write")
    parser.add_argument("--report", default=None, metavar="DIR", help="write report.json and report.png here")
    declare_outputs(parser, "output", folders=("report",))
    declare_flag_names(parser, FLAGS)


def run_cli(args: argparse.Namespace) -> int:
    from ..assets.models import resolve_model
    from ..quantization.calibration_data import CalibrationSource
    from ._common import console, parse_shapes, refuse_arch_unless_weights

    if not args.output and not args.report:
        raise invalid("--output/--report", None, "at least one of them")
    source = CalibrationSource(args.calib)  # read and checked before anything else
    if args.output and Path(args.output).suffix.lower() != ".onnx":
        raise invalid("--output", args.output, "a file name ending in .onnx")
    if not args.output:
        for flag, value in (("--keep-fp32", args.keep_fp32), ("--calibration-method", args.calibration_method)):
            if value is not None:
                raise invalid(flag, value, f"{flag} only with --output (it tunes the INT8 .onnx file; --report "
                                           "measures each layer alone)")
    if args.report:
        folder = Path(args.report)
        for name in ("report.json", "report.png"):
            if (folder / name).is_dir():
                raise invalid("--report", args.report, f"a folder in which {name} can be written (it is a folder)")
            if args.output and Path(args.output).absolute() == (folder / name).absolute():
                raise invalid("--output", args.output, f"a path other than the report's {folder / name}")
    keep: int | str = 0 if args.keep_fp32 is None else args.keep_fp32
    shapes = parse_shapes(args.inputs)
    if Path(args.model).suffix.lower() in (".pt2", ".onnx") or _is_torchscript(args.model):
        raise invalid("model", args.model, "a model with its layers intact — a built-in name, a state_dict/.safetensors "
                                          "with --arch, or a pickled nn.Module with --trust-pickle (.pt2, TorchScript "
                                          "and ONNX files hold flattened graphs that layer-wise quantization cannot edit)")
    refuse_arch_unless_weights(args)
    model, examples, names, label = resolve_model(args.model, shapes, arch=args.arch, trust_pickle=args.trust_pickle)
    if examples is not None:
        source.check_examples(tuple(examples))
    calib = source.load(args.samples, tuple(examples[0].shape) if examples else shapes[0] if shapes else None)
    from ..quantization.onnx_static import check_runs

    check_runs(model, calib[:1], argument="calib")  # one sample: wrong shapes fail now, not mid-way
    out = console()
    if args.report:
        from ..quantization.report import quantization_report

        report = quantization_report(model, calib[: min(len(calib), 32)])
        folder = Path(args.report)
        report.save_json(folder / "report.json")
        report.plot(folder / "report.png")
        out.print(report.table())
        out.print(f"keep in higher precision: {', '.join(report.keep) or 'none'}; wrote {folder}/report.json, report.png")
    if args.output:
        import torch

        from ..quantization.onnx_static import quantize_static_onnx

        with torch.no_grad():
            first = model(calib[:1])
        out_shape = first.shape if isinstance(first, torch.Tensor) else None
        # a classifier is held to the INT8 floor on samples the calibration does not see (as deepseek-compile does)
        held = min(64, len(calib) // 4) if out_shape is not None and len(out_shape) == 2 and len(calib) >= 16 else 0
        floor = {"held_out": calib[:held]} if held else {}
        try:
            result = quantize_static_onnx(model, calib[held:], args.output, method=args.calibration_method or "percentile",
                                          keep_fp32=keep, input_names=names, int8_format=args.int8_format,
                                          **({"min_agreement": args.min_agreement} if floor else {}), **floor)
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime's quantization tools are missing: pip install onnxruntime") from exc
        out.print(f"[green]wrote[/] {result.path} from {label}: {result.size_bytes / 1e6:.1f} MB (FP32 {result.fp32_size_bytes / 1e6:.1f} MB), "
                  f"top-1 agreement with FP32 on the {result.calibration_samples} calibration inputs "
                  f"{result.calibration_agreement:.1%} (output SQNR {result.calibration_sqnr_db:.1f} dB), "
                  f"{result.bias_corrected_layers} biases corrected, activations left in float: "
                  f"{', '.join(result.float_activations) or 'none'}")
        out.print(result.summary(), style="bold red" if result.below_floor else None, markup=False)
    return 0


def _is_torchscript(model: str) -> bool:
    path = Path(model)
    if not path.is_file():
        return False
    from ..runtime.artifacts import detect_kind

    return detect_kind(path) == "torchscript"
