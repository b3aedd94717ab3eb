"""`deepseek tune ... -- python train.py`: scripts as trials, pruned while they run, a killed worker's trial
failed while the study goes on, optuna-dashboard reading the study, and one-line errors for bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

CONFIG = """
search_space:
  x: {type: uniform, min: -5, max: 5}
  y: {type: choice, options: [1, 2, 3]}
metric: loss
direction: minimize
n_trials: %d
pruner: median
seed: 0
"""

SCRIPT = """
import os, signal, sys
from deepseek.tune import report, trial_params
p = trial_params()
for step in range(4):  # a learning curve the median pruner can judge
    report((p["x"] - 1) ** 2 + 1 / (step + 1), step)
if os.environ["DEEPSEEK_TRIAL_NUMBER"] == os.environ.get("KILL_AT"):
    os.kill(os.getppid(), signal.SIGKILL)  # the worker running this trial dies mid-trial
    sys.exit(0)
print("some log line")
print(f"loss: {(p['x'] - 1) ** 2 + p['y']}")
"""


def _tune(tmp_path, *args, trials=12, script=SCRIPT, env=None, config=None):
    (tmp_path / "c.yaml").write_text(config if config is not None else CONFIG % trials)
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    return subprocess.run([sys.executable, "-m", "deepseek", "tune", "--config", str(tmp_path / "c.yaml"), "--quiet",
                           "--output", str(tmp_path / "out"), *args, "--", sys.executable, str(tmp_path / "train.py")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**__import__("os").environ, **(env or {})})


def test_scripts_are_trials_and_the_pruner_stops_them(tmp_path):
    done = _tune(tmp_path, trials=16)
    assert done.returncode == 0, done.stderr
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    x, y = best["best_params"]["x"], best["best_params"]["y"]
    assert best["best_value"] == pytest.approx((x - 1) ** 2 + y)  # read back from the script's own output
    assert best["pruned"] > 0 and best["complete"] + best["pruned"] == 16
    assert "best loss" in done.stdout


def test_a_killed_worker_fails_its_trial_and_the_study_goes_on(tmp_path):
    done = _tune(tmp_path, "--workers", "2", trials=10, env={"KILL_AT": "2"})
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    failed = [r for r in rows if r["state"] == "FAIL"]
    assert len(failed) == 1 and failed[0]["number"] == 2 and "died" in failed[0]["error"]
    assert sorted(r["number"] for r in rows) == list(range(len(rows))) and len(rows) >= 10
    assert sum(r["state"] in ("COMPLETE", "PRUNED") for r in rows) >= 9
    assert (tmp_path / "out" / "study.journal").is_file()
    # --resume continues the same study: 4 more trials
    more = _tune(tmp_path, "--workers", "2", "--resume", "--n-trials", str(len(rows) + 4), trials=10)
    assert more.returncode == 0, more.stderr
    assert len(json.loads((tmp_path / "out" / "trials.json").read_text())) >= len(rows) + 4


def test_optuna_dashboard_opens_the_study(tmp_path):
    assert _tune(tmp_path, "--storage", str(tmp_path / "s.journal"), trials=4).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = Path(sys.executable).with_name("optuna-dashboard")  # its console script, installed beside python
    proc = subprocess.Popen([str(dashboard), str(tmp_path / "s.journal"), "--port", str(port),
                             "--host", "127.0.0.1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as resp:
                    studies = json.loads(resp.read())["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("optuna-dashboard did not answer")
        assert [s["study_name"] for s in studies] == ["deepseek-tune"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(("config", "script", "words"), [
    ("search_space: {x: {type: gaussian, min: 0, max: 1}}", SCRIPT, ["search_space.x.type", "gaussian"]),
    ("search_space: {x: {type: uniform, min: 3, max: 1}}", SCRIPT, ["search_space.x", "min < max"]),
    ("search_space: {x: {type: choice, options: []}}", SCRIPT, ["search_space.x.options", "non-empty"]),
    ("search_space: {x: {type: uniform, min: 0, max: 1}}\nmetric: loss", "raise SystemExit('CUDA out of memory')",
     ["trial 0", "exited with 1", "CUDA out of memory"]),
    ("search_space: {x: {type: uniform, min: 0, max: 1}}\nmetric: loss", "print('done')",
     ["without reporting 'loss'"]),
    ("search_space: [oops", SCRIPT, ["--config", "valid YAML"]),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, config, script, words):
    done = _tune(tmp_path, config=config, script=script)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_no_script_after_the_double_dash_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG % 2)
    done = subprocess.run([sys.executable, "-m", "deepseek", "tune", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "command" in done.stderr and "--" in done.stderr
