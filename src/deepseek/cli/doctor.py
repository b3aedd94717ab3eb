"""``deepseek doctor``: parses the flags, calls :func:`deepseek.bench.doctor`, prints the result."""

from __future__ import annotations

import argparse

from ..bench.doctor import doctor, render


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``, ``--output FILE`` and ``--fast`` to the ``doctor`` subcommand."""
    parser.add_argument("--json", action="store_true", help="print the report as JSON (nothing else on stdout)")
    parser.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the JSON report to FILE")
    parser.add_argument("--fast", action="store_true", help="skip the torch.compile probe (it takes 10-30 s)")
    from ._common import declare_outputs

    declare_outputs(parser, "output")


def run_cli(args: argparse.Namespace) -> int:
    """Run the doctor, print it (table or JSON), and return 1 when any finding is an error."""
    report = doctor(check_compile=not args.fast)
    if args.output:
        report.save_json(args.output)
    if args.json:
        print(report.to_json())
    else:
        from ._common import console

        render(report, console())
    return report.exit_code
