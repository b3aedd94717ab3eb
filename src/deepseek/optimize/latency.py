"""Batch-1 latency of an artifact, measured in a process of its own (``python -m deepseek.optimize.latency``):
no state of the optimizer's process (threads, caches, torch) colours the figure.

    python -m deepseek.optimize.latency ARTIFACT --shape 1x3x224x224 [--sample x.npy] [--threads 2] [--runs 100]
                                        [--device cpu|cuda]
prints ``{"median_ms": ..., "p90_ms": ..., "runs": ...}``. ``--sample`` times a real input (its dtype kept: token
ids stay integers); without it, a standard-normal float32 input of ``--shape``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .._errors import DeepSeekError


def measure_latency(artifact: str | Path, shape: tuple[int, ...], *, threads: int = 2, runs: int = 100,
                    timeout_s: float = 600, sample: str | Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """Run this module on ``artifact`` in a fresh interpreter; its figures."""
    command = [sys.executable, "-m", "deepseek.optimize.latency", str(artifact), "--shape",
               "x".join(map(str, shape)), "--threads", str(threads), "--runs", str(runs), "--device", device]
    if sample is not None:
        command += ["--sample", str(sample)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise DeepSeekError(f"latency of {artifact}: the measuring process failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ONNX Runtime's CUDA execution provider)")
    parser.add_argument("--sample", default=None, help="a .npy input to time (default: random normal of --shape)")
    args = parser.parse_args(argv)
    import numpy as np

    from .._timing import measure
    from ..runtime import load

    shape = tuple(int(d) for d in args.shape.split("x"))
    predictor = load(args.artifact, threads=args.threads, device=args.device)
    if args.sample:
        x = np.load(args.sample, allow_pickle=False)
    else:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    stats = measure(lambda: predictor.run(x), warmup=10, runs=args.runs, min_seconds=1.0)
    print(json.dumps({"median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "runs": stats.runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
