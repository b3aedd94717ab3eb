"""Every benchmark script runs end to end with ``--smoke`` (tiny sizes), so a script behind a README figure cannot
rot: a script added without a smoke mode, or one that crashes, fails here.

The scripts start in the background as soon as the suite is collected (tests/conftest.py), one at a time beside
the rest of the suite — most of a smoke run is single-threaded (interpreter start-up, imports, exports, Inductor
compiles, worker processes starting), so it fills the core the foreground tests leave idle — and these tests run
last: when they are reached a second runner joins, and each test reads its own script's run. Their figures mean
nothing either way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
RESULTS = ROOT / "benchmarks" / "results"
SKIPPED = 77  # a script exits with this when a dependency it needs is missing (e.g. the arm64 cross toolchain)
TIMEOUT_S = 900  # one script


def test_every_benchmark_script_has_a_smoke_mode():
    assert SCRIPTS
    missing = [p.name for p in SCRIPTS if "add_smoke_flag" not in p.read_text()]
    assert not missing, f"benchmark scripts without --smoke: {missing}"


def _run(script: Path, folder: Path) -> subprocess.CompletedProcess | str:
    # OMP threads that sleep instead of spinning, and one of them: a smoke run's figures mean nothing, and spinning
    # waits make a 2-core machine shared with the foreground tests, or the script's own workers, many times slower
    env = {**os.environ, "DEEPSEEK_BENCH_RESULTS": str(folder / "results"), "PYTHONUNBUFFERED": "1",
           "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, cwd=folder)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT_S} s"


def _snapshot() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in RESULTS.rglob("*") if p.is_file()}


class SmokeRunner:
    """Runs ``scripts`` (the slowest first) on background threads: one from :meth:`start`, another per
    :meth:`add_runner`; :meth:`wait` adds one and returns every run and whether benchmarks/results stayed as it
    was."""

    def __init__(self, scripts: list[Path]) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="bench-smoke-suite-"))
        self.folders = {s: self.work / s.stem for s in scripts}
        for folder in self.folders.values():
            folder.mkdir()
        self.queue = deque(sorted(scripts, key=lambda s: -s.stat().st_size))  # the last to start is a short one
        self.runs: dict[Path, subprocess.CompletedProcess | str] = {}
        self.seconds: dict[Path, float] = {}  # each script's wall time, shown in the suite's summary
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.before = _snapshot()

    def _work(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                script = self.queue.popleft()
            started = time.perf_counter()
            try:
                self.folders[script].mkdir(parents=True, exist_ok=True)
                self.runs[script] = _run(script, self.folders[script])
            except Exception as e:  # reported by this script's test; the other scripts still run
                self.runs[script] = f"could not run: {e!r}"
            self.seconds[script] = time.perf_counter() - started

    def add_runner(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True)
        thread.start()
        self.threads.append(thread)

    start = add_runner

    def finished(self) -> bool:
        """Every script has run (the queue is empty and no runner is busy)."""
        with self.lock:
            return not self.queue and not any(t.is_alive() for t in self.threads)

    def wait(self) -> tuple[dict, dict[Path, Path], bool]:
        self.add_runner()  # the foreground is done: both cores for what is left
        for thread in self.threads:
            thread.join()
        return self.runs, self.folders, _snapshot() == self.before

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def selected_scripts(items: list) -> list[Path]:
    return [item.callspec.params["script"] for item in items
            if getattr(item, "callspec", None) and "script" in item.callspec.params
            and item.module.__name__.endswith("test_benchmarks_smoke")]


@pytest.fixture(scope="module")
def smoke_runs(request):
    """Every selected script's run (started in the background by conftest.py, or here when it was not)."""
    runner = getattr(request.config, "_deepseek_smoke_runner", None)
    if runner is None:
        runner = SmokeRunner(selected_scripts(request.session.items))
        runner.start()
    try:
        yield runner.wait()
    finally:
        runner.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first test waits for every script
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_runs_in_smoke_mode(script: Path, smoke_runs):
    runs, folders, results_untouched = smoke_runs
    done = runs[script]
    assert not isinstance(done, str), f"{script.name}: {done}"
    if done.returncode == SKIPPED:
        pytest.skip(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "dependency missing")
    assert done.returncode == 0, (done.stdout[-3000:] + "\n" + done.stderr[-5000:])
    written = list((folders[script] / "results").glob("*.json"))
    assert written, "the smoke run wrote no results JSON"
    for path in written:
        assert json.loads(path.read_text())  # complete, parseable, not empty
    assert results_untouched, "a smoke run wrote into benchmarks/results"
