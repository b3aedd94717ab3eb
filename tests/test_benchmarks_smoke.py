"""Every benchmark script runs end to end with ``--smoke`` (tiny sizes), so a script behind a README figure cannot
rot: a script added without a smoke mode, or one that crashes, fails here.

The scripts run two at a time (one fixture starts every selected script; each test reads its own script's run):
most of a smoke run is single-threaded — interpreter start-up, imports, exports, Inductor compiles, worker
processes starting — so a second script fills the other core. Their figures mean nothing either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
SKIPPED = 77  # a script exits with this when a dependency it needs is missing (e.g. the arm64 cross toolchain)
CONCURRENT = 2
TIMEOUT_S = 900  # one script


def test_every_benchmark_script_has_a_smoke_mode():
    assert SCRIPTS
    missing = [p.name for p in SCRIPTS if "add_smoke_flag" not in p.read_text()]
    assert not missing, f"benchmark scripts without --smoke: {missing}"


def _run(script: Path, folder: Path) -> subprocess.CompletedProcess | str:
    # OMP threads that sleep instead of spinning: a smoke run's figures mean nothing, and spinning waits make a
    # 2-core machine shared with another script, or the script's own worker processes, many times slower
    env = {**os.environ, "DEEPSEEK_BENCH_RESULTS": str(folder / "results"), "PYTHONUNBUFFERED": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    try:
        return subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, cwd=folder)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT_S} s"


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory):
    """Every script this session selected, run ``CONCURRENT`` at a time; and whether benchmarks/results changed."""
    selected = [item.callspec.params["script"] for item in request.session.items
                if getattr(item, "callspec", None) and "script" in item.callspec.params
                and item.module.__name__ == request.module.__name__]
    results = ROOT / "benchmarks" / "results"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    work = tmp_path_factory.mktemp("bench-smoke")
    folders = {s: work / s.stem for s in selected}
    for folder in folders.values():
        folder.mkdir()
    # the slowest first, so the last one to start is a short one
    order = sorted(selected, key=lambda s: -s.stat().st_size)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        runs = dict(zip(order, pool.map(lambda s: _run(s, folders[s]), order)))
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    return runs, folders, after == before


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
