"""Measurements in a process of their own, one protocol for every harness (a benchmark row, an artifact's latency,
artifacts timed interleaved, a language model's decode speed): the parent writes the job as JSON to the child's
stdin (``python -m MODULE``), the child prints its result as one JSON object, the last line of its stdout. A fresh
interpreter, not multiprocessing's spawn (which re-imports the caller's main script), so the child holds only what
the measurement needs and no state of the parent (threads, caches, torch) colours the figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import DeepSeekError


def run_child(module: str, job: Mapping[str, Any], *, what: str, threads: int | None = None,
              timeout_s: float | None = None, import_path: bool = False) -> dict[str, Any]:
    """Run ``python -m module`` on ``job``; its result. ``threads`` sets the child's ``OMP_NUM_THREADS``;
    ``import_path`` passes this process's import path on (a pickled model's classes then resolve in the child).
    A child that exits non-zero with a JSON result (``{"failed": ..., "error": ...}``) returns it; one that crashes,
    prints no result or outlives ``timeout_s`` raises :class:`DeepSeekError` naming ``what``."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if import_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    try:
        done = subprocess.run([sys.executable, "-m", module], input=json.dumps(job), capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise DeepSeekError(f"{what}: the measuring process took longer than {timeout_s:g} s") from exc
    result = last_json(done.stdout)
    if not result or (done.returncode != 0 and "failed" not in result):
        tail = " | ".join(done.stderr.strip().splitlines()[-2:]) or "no output"
        raise DeepSeekError(f"{what}: the measuring process failed (exit {done.returncode}): {tail}")
    return result


def child_main(measure: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The child's side: read the job from stdin, print ``measure(job)`` as one JSON line; exit status 1 when the
    result says ``failed``."""
    result = measure(json.loads(sys.stdin.read()))
    print(json.dumps(result), flush=True)
    return 1 if result.get("failed") else 0


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of ``stdout`` as a JSON object; empty when it is not one."""
    lines = stdout.strip().splitlines()
    try:
        value = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
