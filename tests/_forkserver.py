"""A fork server for the suite's background lane: it imports torch, torchvision, ONNX Runtime, transformers and
deepseek once, then runs each job (a benchmark script with ``--smoke``, or one test in pytest) in a forked child,
so a job does not pay the 6-7 s of interpreter start-up and imports a fresh process pays on 2 cores.

Protocol: one JSON object per line on stdin ``{"kind": "script"|"pytest", "argv": [...], "cwd": ..., "env": {...},
"log": prefix, "timeout": seconds}``; the child's stdout and stderr go to ``<log>.out`` / ``<log>.err``; one JSON
line per job on stdout: ``{"returncode": int | null, "timed_out": bool}``. A job runs in a process group of its
own, killed whole on timeout. Started with the environment every job shares (one OpenMP thread, passive waits)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import signal
import sys
import time
import traceback

PRELOAD = ("numpy", "torch", "torchvision", "onnxruntime", "onnx", "transformers", "rich", "pytest", "deepseek")


def _child(job: dict) -> int:
    os.setpgid(0, 0)
    atexit._clear()  # the server's exit handlers are not the job's
    os.chdir(job["cwd"])
    os.environ.update(job["env"])
    for fd, suffix in ((1, ".out"), (2, ".err")):
        target = os.open(job["log"] + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    null = os.open(os.devnull, os.O_RDONLY)  # not the server's job pipe
    os.dup2(null, 0)
    os.close(null)
    argv = list(job["argv"])
    code = 0
    try:
        if job["kind"] == "script":
            sys.argv = argv
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        else:  # like `python -m pytest ARGS` from cwd
            import pytest

            sys.argv = ["pytest", *argv]
            sys.path[0] = os.getcwd()
            code = int(pytest.main(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _run(job: dict) -> dict:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(job)
        finally:
            os._exit(code)
    deadline = time.monotonic() + float(job["timeout"])
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"returncode": None, "timed_out": True}
        time.sleep(0.05)


def main() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    out = sys.stdout
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_run(json.loads(line))), file=out, flush=True)


if __name__ == "__main__":
    main()
