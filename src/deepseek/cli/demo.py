"""``deepseek demo``: parses the flags, calls :func:`deepseek.demo.run_demo`, prints the result."""

from __future__ import annotations

import argparse

from ..demo import run_demo


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_outputs

    parser.add_argument("--output", "-o", default="reports/demo", help="report folder")
    parser.add_argument("--runs", type=count(), default=20, help="timed runs per benchmark measurement")
    parser.add_argument("--cnn-epochs", type=count(), default=3, help="training epochs of the CNN that is then pruned")
    parser.add_argument("--optimize-trials", type=count(), default=8, help="candidates deepseek optimize measures")
    parser.add_argument("--calibration-images", type=count(), default=128,
                        help="photo crops MobileNetV2's static INT8 is calibrated on")
    declare_outputs(parser, folders=("output",))


def run_cli(args: argparse.Namespace) -> int:
    from ._common import console

    run_demo(args.output, runs=args.runs, cnn_epochs=args.cnn_epochs, optimize_trials=args.optimize_trials,
             calibration_images=args.calibration_images, console=console())
    return 0
