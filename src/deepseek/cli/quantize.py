"""``deepseek quantize``: static INT8 for ONNX Runtime from real calibration data, with a per-layer report."""

from __future__ import annotations

import argparse

from .._core.errors import invalid
from ..quantization.precision import INT8_FORMATS

# the library's argument names -> the flags that set them
FLAGS = {"calibration": "--calib", "method": "--calibration-method", "source": "MODEL"}


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
    parser.add_argument("--samples", "--calib-samples", type=count(), default=128, help="calibration samples to use")
    parser.add_argument("--output", "-o", default=None, help="the INT8 .onnx file to write")
    parser.add_argument("--report", default=None, metavar="DIR", help="write report.json and report.png here")
    declare_outputs(parser, "output", folders=("report",))
    declare_flag_names(parser, FLAGS)


def run_cli(args: argparse.Namespace) -> int:
    from ..quantization.workflow import quantize_model
    from ._common import console, parse_shapes

    if not args.output and not args.report:
        raise invalid("--output/--report", None, "at least one of them")
    done = quantize_model(args.model, calib=args.calib, samples=args.samples, output=args.output, report=args.report,
                          inputs=parse_shapes(args.inputs), arch=args.arch, trust_pickle=args.trust_pickle,
                          calibration_method=args.calibration_method, keep_fp32=args.keep_fp32,
                          int8_format=args.int8_format, min_agreement=args.min_agreement)
    out = console()
    if done.report is not None:
        out.print(done.report.table())
    for line in done.summary():
        below = done.result is not None and done.result.below_floor and line == done.result.summary()
        out.print(line, style="bold red" if below else None, markup=False, highlight=False)
    return 0
