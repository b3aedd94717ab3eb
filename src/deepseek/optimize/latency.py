"""Batch-1 latency of artifacts, measured in a process of its own (``python -m deepseek.optimize.latency``):
no state of the optimizer's process (threads, caches, torch) colours the figure.

    python -m deepseek.optimize.latency ARTIFACT --shape 1x3x224x224 [--sample x.npy] [--threads 2] [--runs 100]
                                        [--device cpu|cuda]
prints ``{"median_ms": ..., "p90_ms": ..., "runs": ...}``. ``--sample`` times a real input (its dtype kept: token
ids stay integers); without it, a standard-normal float32 input of ``--shape``.

    python -m deepseek.optimize.latency --interleaved A B C --shape 1x3x224x224 [--rounds 7] [--calls 30] [...]
loads every artifact in the one process and times them interleaved (A B C, B C A, C A B, ...: the order rotates each
round), ``--calls`` calls each per round; prints ``{"round_ms": {"A": [median per-call ms of each round], ...}}``.
Round i of every artifact then shares one machine state, which :func:`deepseek.optimize.ranking.rank_latencies`
pairs on. A failure prints ``{"failed": ARTIFACT, "error": ...}`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.errors import DeepSeekError, invalid


def measure_latency(artifact: str | Path, shape: tuple[int, ...], *, threads: int = 2, runs: int = 100,
                    timeout_s: float = 600, sample: str | Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """Run this module on ``artifact`` in a fresh interpreter; its figures."""
    command = [sys.executable, "-m", "deepseek.optimize.latency", str(artifact), "--shape",
               "x".join(map(str, shape)), "--threads", str(threads), "--runs", str(runs), "--device", device]
    if sample is not None:
        command += ["--sample", str(sample)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise DeepSeekError(f"latency of {artifact}: the measuring process failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_interleaved(artifacts: Sequence[str | Path], shape: tuple[int, ...], *, threads: int = 2,
                        rounds: int = 7, calls: int = 30, sample: str | Path | None = None, device: str = "cpu",
                        timeout_s: float = 900) -> dict[str, list[float]]:
    """Time ``artifacts`` interleaved in one fresh interpreter (``OMP_NUM_THREADS=threads``): each loaded with
    :func:`deepseek.runtime.load` and warmed up, then ``rounds`` rounds of ``calls`` batch-1 calls each, the
    artifacts' order rotating every round. Returns ``{str(artifact): [median per-call ms of each round]}``, in
    ``artifacts``' order. ``sample`` is a ``.npy`` input for all of them (default: standard normal of ``shape``).

    Raises :class:`~deepseek._core.errors.InvalidArgumentError` for bad arguments and
    :class:`~deepseek._core.errors.DeepSeekError` naming the artifact when the measuring process fails or times out.
    """
    names = [str(a) for a in artifacts] if isinstance(artifacts, Sequence) and not isinstance(artifacts, str) else []
    if not names:
        raise invalid("artifacts", artifacts, "a non-empty list of artifact paths")
    if len(set(names)) != len(names):
        raise invalid("artifacts", names, "distinct artifact paths")
    for name in names:
        if not Path(name).exists():
            raise invalid("artifacts", name, "an existing artifact file")
    for argument, value in (("threads", threads), ("rounds", rounds), ("calls", calls)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(argument, value, "an integer >= 1")
    command = [sys.executable, "-m", "deepseek.optimize.latency", "--interleaved", *names, "--shape",
               "x".join(map(str, shape)), "--threads", str(threads), "--rounds", str(rounds), "--calls", str(calls),
               "--device", device]
    if sample is not None:
        command += ["--sample", str(sample)]
    what = f"interleaved latency of {', '.join(names)}"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    except subprocess.TimeoutExpired as exc:
        raise DeepSeekError(f"{what}: the measuring process took longer than {timeout_s:g} s") from exc
    last = _last_json(done.stdout)
    if done.returncode != 0:
        if "failed" in last:
            raise DeepSeekError(f"latency of {last['failed']}: the measuring process failed: {last.get('error')}")
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise DeepSeekError(f"{what}: the measuring process failed: {tail}")
    round_ms = last.get("round_ms")
    if not isinstance(round_ms, dict) or sorted(round_ms) != sorted(names):
        raise DeepSeekError(f"{what}: the measuring process printed no figures for them: {done.stdout[-200:]!r}")
    return {name: [float(v) for v in round_ms[name]] for name in names}


class ArtifactRunError(Exception):
    """One of the functions given to :func:`time_interleaved` raised; ``name`` says which (the cause is chained)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def time_interleaved(functions: Mapping[str, Callable[[], Any]], *, rounds: int, calls: int, warmup: int = 10,
                     clock: Callable[[], int] = time.perf_counter_ns) -> dict[str, list[float]]:
    """Call each of ``functions`` ``warmup`` times untimed, then, for each of ``rounds`` rounds, each function
    ``calls`` times in a row, the functions' order rotated by one every round (round r starts with the r-th).
    Returns ``{name: [median per-call ms of each round]}``; ``clock`` counts nanoseconds.
    Raises :class:`ArtifactRunError` naming the function that raised."""
    names = list(functions)
    for name in names:
        try:
            for _ in range(warmup):
                functions[name]()
        except Exception as exc:
            raise ArtifactRunError(name) from exc
    round_ms: dict[str, list[float]] = {name: [] for name in names}
    per_call = [0] * calls
    for r in range(rounds):
        shift = r % len(names)  # a rotation, so that no artifact always runs right after the same one
        for name in names[shift:] + names[:shift]:
            fn = functions[name]
            try:
                for i in range(calls):
                    t0 = clock()
                    fn()
                    per_call[i] = clock() - t0
            except Exception as exc:
                raise ArtifactRunError(name) from exc
            round_ms[name].append(statistics.median(per_call) / 1e6)
    return round_ms


def _last_json(stdout: str) -> dict[str, Any]:
    """The last line of ``stdout`` as a JSON object; empty when it is not one."""
    lines = stdout.strip().splitlines()
    try:
        value = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _interleaved(artifacts: list[str], x: Any, *, threads: int, device: str, rounds: int, calls: int) -> int:
    """The child's side of :func:`measure_interleaved`: load, warm up and time; print one JSON line."""
    from ..runtime import load

    functions: dict[str, Callable[[], Any]] = {}
    for name in artifacts:
        try:
            predictor = load(name, threads=threads, device=device)
        except Exception as exc:
            return _fail(name, exc)
        functions[name] = lambda p=predictor: p.run(x)
    try:
        round_ms = time_interleaved(functions, rounds=rounds, calls=calls)
    except ArtifactRunError as exc:
        return _fail(exc.name, exc.__cause__ or exc)
    print(json.dumps({"round_ms": round_ms}))
    return 0


def _fail(artifact: str, exc: BaseException) -> int:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    print(json.dumps({"failed": artifact, "error": f"{type(exc).__name__}: {first}"}))
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", nargs="?")
    parser.add_argument("--interleaved", nargs="+", metavar="ARTIFACT", help="time these artifacts interleaved")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7, help="with --interleaved: rounds over all artifacts")
    parser.add_argument("--calls", type=int, default=30, help="with --interleaved: timed calls per artifact a round")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ONNX Runtime's CUDA execution provider)")
    parser.add_argument("--sample", default=None, help="a .npy input to time (default: random normal of --shape)")
    args = parser.parse_args(argv)
    if (args.artifact is None) == (args.interleaved is None):
        parser.error("give one ARTIFACT, or --interleaved ARTIFACT [ARTIFACT ...]")
    import numpy as np

    from .._core.timing import measure
    from ..runtime import load

    shape = tuple(int(d) for d in args.shape.split("x"))
    predictor = load(args.artifact, threads=args.threads, device=args.device) if args.artifact else None
    if args.sample:
        x = np.load(args.sample, allow_pickle=False)
    else:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if predictor is None:
        return _interleaved(args.interleaved, x, threads=args.threads, device=args.device, rounds=args.rounds,
                            calls=args.calls)
    stats = measure(lambda: predictor.run(x), warmup=10, runs=args.runs, min_seconds=1.0)
    print(json.dumps({"median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "runs": stats.runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
