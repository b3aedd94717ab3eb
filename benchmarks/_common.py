"""What every benchmark script shares: the ``--smoke`` flag and where results are written.

``--smoke`` runs the script's whole path on tiny sizes with a couple of timed calls, in seconds, so the test suite
can run every script (tests/test_benchmarks_smoke.py) and none rots. Smoke figures mean nothing: they are written to
``$DEEPSEEK_BENCH_RESULTS`` (or a temporary folder), never over the results in benchmarks/results/ that README cites.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SMOKE_ENV = "DEEPSEEK_BENCH_RESULTS"


def add_smoke_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, 2 timed runs: check that the script works (seconds); figures are not "
                             f"meaningful and go to ${SMOKE_ENV} or a temporary folder, not benchmarks/results")


def results_dir(args: argparse.Namespace) -> Path:
    """benchmarks/results, or in smoke mode ``$DEEPSEEK_BENCH_RESULTS`` / a fresh temporary folder."""
    if getattr(args, "smoke", False):
        if not os.environ.get(SMOKE_ENV):  # one temporary folder per run: every later call returns the same one
            os.environ[SMOKE_ENV] = tempfile.mkdtemp(prefix="bench-smoke-")
        folder = Path(os.environ[SMOKE_ENV])
    else:
        folder = RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_results(args: argparse.Namespace, name: str, data: Any) -> Path:
    """Write ``data`` as JSON to ``name`` in :func:`results_dir` (atomically: a reader never sees half a file)."""
    path = results_dir(args) / name
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}", flush=True)
    return path


def scratch_dir(prefix: str = "bench-") -> Path:
    """A fresh temporary folder for exported models and engines, removed when the script exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
