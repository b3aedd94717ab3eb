"""Every benchmark script runs end to end with ``--smoke`` (tiny sizes), so a script behind a README figure cannot
rot: a script added without a smoke mode, or one that crashes, fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
SKIPPED = 77  # a script exits with this when a dependency it needs is missing (e.g. the arm64 cross toolchain)


def test_every_benchmark_script_has_a_smoke_mode():
    assert SCRIPTS
    missing = [p.name for p in SCRIPTS if "add_smoke_flag" not in p.read_text()]
    assert not missing, f"benchmark scripts without --smoke: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_runs_in_smoke_mode(script: Path, tmp_path: Path):
    results = ROOT / "benchmarks" / "results"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    # OMP threads that sleep instead of spinning: a smoke run's figures mean nothing, and spinning waits make a
    # 2-core machine shared with the script's own worker processes many times slower
    env = {**os.environ, "DEEPSEEK_BENCH_RESULTS": str(tmp_path / "results"), "PYTHONUNBUFFERED": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    if done.returncode == SKIPPED:
        pytest.skip(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "dependency missing")
    assert done.returncode == 0, (done.stdout[-3000:] + "\n" + done.stderr[-5000:])
    written = list((tmp_path / "results").glob("*.json"))
    assert written, "the smoke run wrote no results JSON"
    for path in written:
        assert json.loads(path.read_text())  # complete, parseable, not empty
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    assert after == before, "a smoke run wrote into benchmarks/results"
