"""Batch-1 latency of artifacts, each measured in a process of its own (:mod:`deepseek._core.child`): no state of
the optimizer's process (threads, caches, torch) colours the figure.

:func:`measure_latency` times one artifact (``{"median_ms", "p90_ms", "runs"}``) on a real ``sample`` input (its
dtype kept: token ids stay integers) or a standard-normal float32 input of ``shape``. :func:`measure_interleaved`
loads every artifact in one process and times them interleaved (A B C, B C A, C A B, ...: the order rotates each
round), ``calls`` calls each per round; round i of every artifact then shares one machine state, which
:func:`deepseek.optimize.ranking.rank_latencies` pairs on. The child's side is :func:`measure_job`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_int
from .._core.child import run_child
from .._core.errors import DeepSeekError, invalid


def measure_latency(artifact: str | Path, shape: tuple[int, ...], *, threads: int = 2, runs: int = 100,
                    timeout_s: float = 600, sample: str | Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """``artifact``'s batch-1 latency, timed in a fresh interpreter: ``{"median_ms", "p90_ms", "runs"}``."""
    job = {"artifact": str(artifact), "shape": list(shape), "threads": threads, "runs": runs, "device": device,
           "sample": None if sample is None else str(sample)}
    result = run_child(__name__, job, what=f"latency of {artifact}", threads=threads, timeout_s=timeout_s)
    if "failed" in result:
        raise DeepSeekError(f"latency of {artifact}: the measuring process failed: {result.get('error')}")
    return result


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
    threads = check_int(threads, "threads", minimum=1)
    rounds = check_int(rounds, "rounds", minimum=1)
    calls = check_int(calls, "calls", minimum=1)
    job = {"interleaved": names, "shape": list(shape), "threads": threads, "rounds": rounds, "calls": calls,
           "device": device, "sample": None if sample is None else str(sample)}
    what = f"interleaved latency of {', '.join(names)}"
    result = run_child(__name__, job, what=what, threads=threads, timeout_s=timeout_s)
    if "failed" in result:
        raise DeepSeekError(f"latency of {result['failed']}: the measuring process failed: {result.get('error')}")
    round_ms = result.get("round_ms")
    if not isinstance(round_ms, dict) or sorted(round_ms) != sorted(names):
        raise DeepSeekError(f"{what}: the measuring process printed no figures for them: {result!r:.200}")
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


def _interleaved(artifacts: list[str], x: Any, *, threads: int, device: str, rounds: int, calls: int
                 ) -> dict[str, Any]:
    """The child's side of :func:`measure_interleaved`: load, warm up and time."""
    from ..runtime import load

    functions: dict[str, Callable[[], Any]] = {}
    for name in artifacts:
        try:
            predictor = load(name, threads=threads, device=device)
        except Exception as exc:
            return _fail(name, exc)
        functions[name] = lambda p=predictor: p.run(x)
    try:
        return {"round_ms": time_interleaved(functions, rounds=rounds, calls=calls)}
    except ArtifactRunError as exc:
        return _fail(exc.name, exc.__cause__ or exc)


def _fail(artifact: str, exc: BaseException) -> dict[str, Any]:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return {"failed": artifact, "error": f"{type(exc).__name__}: {first}"}


def measure_job(job: dict[str, Any]) -> dict[str, Any]:
    """The child's side of :func:`measure_latency` (``artifact``) and :func:`measure_interleaved` (``interleaved``):
    ``shape``, ``threads``, ``device``, ``sample``, and ``runs`` or ``rounds`` and ``calls``."""
    import numpy as np

    from .._core.timing import measure
    from ..runtime import load

    if job.get("sample"):
        x = np.load(job["sample"], allow_pickle=False)
    else:
        x = np.random.default_rng(0).standard_normal(tuple(job["shape"])).astype(np.float32)
    threads, device = job.get("threads", 2), job.get("device", "cpu")
    if "interleaved" in job:
        return _interleaved(list(job["interleaved"]), x, threads=threads, device=device, rounds=job.get("rounds", 7),
                            calls=job.get("calls", 30))
    try:
        predictor = load(job["artifact"], threads=threads, device=device)
        stats = measure(lambda: predictor.run(x), warmup=10, runs=job.get("runs", 100), min_seconds=1.0)
    except Exception as exc:
        return _fail(job["artifact"], exc)
    return {"median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "runs": stats.runs}


if __name__ == "__main__":
    from .._core.child import child_main

    raise SystemExit(child_main(measure_job))
