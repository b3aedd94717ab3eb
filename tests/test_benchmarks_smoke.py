"""Every benchmark script runs end to end with ``--smoke`` (tiny sizes), so a script behind a README figure cannot
rot: a script added without a smoke mode, or one that crashes, fails here.

The scripts start in the background as soon as the suite is collected (tests/conftest.py), one at a time beside
the rest of the suite — most of a smoke run is single-threaded (interpreter start-up, imports, exports, Inductor
compiles, worker processes starting), so it fills the core the foreground tests leave idle — and these tests run
last: when they are reached a second runner joins, and each test reads its own script's run. Their figures mean
nothing either way.

The same lane first takes the suite's few longest self-contained tests (``BACKGROUND_TESTS``), each in a pytest
process of its own, when the whole suite runs: without them the lane ran dry a third of the way before the end and
the foreground finished alone (tests/conftest.py reports their outcomes in place of the tests themselves).

Each runner forks its jobs from a ``ForkServer`` (tests/_forkserver.py) that imported torch, torchvision, ONNX
Runtime, transformers and deepseek once: a fresh interpreter paid 5-9 s of start-up per job on 2 cores."""

from __future__ import annotations

import dataclasses
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
from xml.etree import ElementTree

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


# OMP threads that sleep instead of spinning, and one of them: a smoke run's figures mean nothing, and spinning
# waits make a 2-core machine shared with the foreground tests, or the script's own workers, many times slower
LANE_ENV = {"PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


class ForkServer:
    """A tests/_forkserver.py process: torch and the rest imported once, each job run in a forked child of it."""

    def __init__(self, root: Path, log: Path) -> None:
        with open(log, "w") as err:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_forkserver.py"))],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env={**os.environ, **LANE_ENV}, cwd=root)
        if not self.proc.stdout.readline():  # its imports done
            raise RuntimeError(f"the fork server did not start: {log.read_text()[-2000:]}")

    def run(self, kind: str, argv: list[str], *, cwd: Path, log: Path, timeout: float,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess | None:
        """The job's exit status and output, or None when it timed out."""
        job = {"kind": kind, "argv": argv, "cwd": str(cwd), "env": env or {}, "log": str(log), "timeout": timeout}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the fork server stopped")
        done = json.loads(reply)
        if done["timed_out"]:
            return None
        text = [Path(f"{log}{suffix}").read_text(errors="replace") for suffix in (".out", ".err")]
        return subprocess.CompletedProcess(argv, done["returncode"], *text)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _run(script: Path, folder: Path, server: ForkServer | None = None) -> subprocess.CompletedProcess | str:
    env = {"DEEPSEEK_BENCH_RESULTS": str(folder / "results")}
    if server is not None:
        done = server.run("script", [str(script), "--smoke"], cwd=folder, log=folder / "run", timeout=TIMEOUT_S,
                          env=env)
        return done if done is not None else f"timed out after {TIMEOUT_S} s"
    env = {**os.environ, **LANE_ENV, **env}
    try:
        return subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, cwd=folder)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT_S} s"


# The longest tests whose fixtures cost nothing (seconds in the foreground of a clean-clone suite on AMD EPYC
# Zen 3, 2 cores, 2026-12-07): together about as much as the lane lacked to end with the foreground (~360 s)
BACKGROUND_TESTS = (
    "tests/test_cli.py::test_demo_end_to_end",  # 194
    "tests/nn/test_sparse.py::test_flex_and_dense_sdpa_agree_on_window_sinks_and_block_layouts",  # 61
    "tests/optimize/test_optimize_targets.py::test_arm64_size_search_judges_the_real_bundles_and_replays",  # 46
    "tests/optimize/test_optimize.py::test_the_command_searches_a_model_file_and_replays_its_recipe",  # 43
    "tests/test_bench.py::test_causal_lm_decoding_variants_in_one_run",  # 40
    # the lane's jobs no longer start a fresh interpreter each (ForkServer: ~5-9 s saved a job), so it takes more
    "tests/test_evaluate.py::test_photo_agreement_of_exported_mobilenet",  # 33
    "tests/quantization/test_report_cli.py::test_cli_writes_int8_model_and_report",  # 27
    "tests/nn/test_causal_lm.py::test_the_convert_command_writes_a_verified_folder",  # 22
)


@dataclasses.dataclass(frozen=True)
class LaneOutcome:
    """One test's outcome in a pytest process of its own: ``passed``, ``failed``, ``skipped`` (with its reason),
    or ``error`` (not run: the process failed, timed out or found no such test); ``output``: a failure's traceback,
    else what the process printed."""

    status: str
    reason: str
    output: str


def run_test(nodeid: str, folder: Path, *, root: Path = ROOT, timeout: float = TIMEOUT_S,
             server: ForkServer | None = None) -> LaneOutcome:
    """Run the one test ``nodeid`` (relative to ``root``) in a pytest process of its own (a child of ``server``
    when given), its temporary folders and JUnit report under ``folder`` — a pytest with its own numbered base
    folder would prune the foreground's."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "junit.xml"
    args = ["-q", "-p", "no:cacheprovider", "-rs", f"--basetemp={folder / 'tmp'}", f"--junitxml={report}", nodeid]
    if server is not None:
        done = server.run("pytest", args, cwd=root, log=folder / "pytest", timeout=timeout)
    else:
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, **LANE_ENV}, cwd=root)
        except subprocess.TimeoutExpired:
            done = None
    if done is None:
        return LaneOutcome("error", f"timed out after {timeout:.0f} s", "")
    output = done.stdout + done.stderr
    cases = list(ElementTree.parse(report).iter("testcase")) if report.exists() else []
    if len(cases) != 1:
        return LaneOutcome("error", f"pytest exited with {done.returncode} and ran {len(cases)} tests", output)
    for tag in ("failure", "error"):
        found = cases[0].find(tag)
        if found is not None:
            return LaneOutcome("failed", found.get("message") or tag, found.text or output)  # its traceback
    skipped = cases[0].find("skipped")
    if skipped is not None:
        return LaneOutcome("skipped", skipped.get("message") or "skipped", output)
    return LaneOutcome("passed", "", output) if done.returncode == 0 else \
        LaneOutcome("error", f"pytest exited with {done.returncode}", output)


def _snapshot() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in RESULTS.rglob("*") if p.is_file()}


class SmokeRunner:
    """Runs ``tests`` (node ids, each in a pytest process of its own, see :func:`run_test`), then ``scripts`` (the
    slowest first) on background threads: one from :meth:`start`, another per :meth:`add_runner`. :meth:`outcome`
    waits for one test, :meth:`wait` for everything, and says whether benchmarks/results stayed as it was."""

    def __init__(self, scripts: list[Path], tests: tuple[str, ...] = (), *, root: Path = ROOT) -> None:
        self.root = root
        self.work = Path(tempfile.mkdtemp(prefix="bench-smoke-suite-"))
        self.folders = {s: self.work / s.stem for s in scripts}
        for folder in self.folders.values():
            folder.mkdir()
        # the tests first: the scripts, shorter and many, even out the end (the last to start is a short one)
        self.queue: deque[Path | str] = deque([*tests, *sorted(scripts, key=lambda s: -s.stat().st_size)])
        self.test_folders = {t: self.work / f"test{i}" for i, t in enumerate(tests)}
        self.runs: dict[Path, subprocess.CompletedProcess | str] = {}
        self.outcomes: dict[str, LaneOutcome] = {}
        self.seconds: dict[str, float] = {}  # each job's wall time, shown in the suite's summary
        self.lock = threading.Condition()
        self.threads: list[threading.Thread] = []
        self.joined = False
        self.before = _snapshot()

    def _work(self) -> None:
        try:  # one fork server per runner; without one, a fresh interpreter per job
            server: ForkServer | None = ForkServer(self.root, self.work / f"forkserver-{threading.get_ident()}.log")
        except Exception:
            server = None
        try:
            self._jobs(server)
        finally:
            if server is not None:
                server.close()

    def _jobs(self, server: ForkServer | None) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                job = self.queue.popleft()
            started = time.perf_counter()
            if isinstance(job, str):
                try:
                    outcome = run_test(job, self.test_folders[job], root=self.root, server=server)
                except Exception as e:  # reported by the test itself; the other jobs still run
                    outcome = LaneOutcome("error", f"could not run: {e!r}", "")
            else:
                try:
                    self.folders[job].mkdir(parents=True, exist_ok=True)
                    run = _run(job, self.folders[job], server)
                except Exception as e:  # reported by this script's test; the other scripts still run
                    run = f"could not run: {e!r}"
            with self.lock:
                if isinstance(job, str):
                    self.outcomes[job] = outcome
                else:
                    self.runs[job] = run
                self.seconds[job if isinstance(job, str) else job.name] = time.perf_counter() - started
                self.lock.notify_all()

    def add_runner(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True)
        thread.start()
        self.threads.append(thread)

    start = add_runner

    def finished(self) -> bool:
        """Every job has run (the queue is empty and no runner is busy)."""
        with self.lock:
            return not self.queue and not any(t.is_alive() for t in self.threads)

    def _join_in(self) -> None:
        """The foreground has nothing left but to wait: a second runner takes the other core."""
        with self.lock:
            if self.joined:
                return
            self.joined = True
        self.add_runner()

    def outcome(self, nodeid: str) -> LaneOutcome:
        """The outcome of the background test ``nodeid``, once it has run."""
        self._join_in()
        with self.lock:
            while nodeid not in self.outcomes:
                if not any(t.is_alive() for t in self.threads):
                    return LaneOutcome("error", "the background lane stopped before it ran", "")
                self.lock.wait(timeout=1.0)
            return self.outcomes[nodeid]

    def wait(self) -> tuple[dict, dict[Path, Path], bool]:
        self._join_in()
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
