"""Trials as scripts: ``deepseek tune --config c.yaml -- python train.py`` runs the command once per trial.

The script learns its parameters from the environment — ``DEEPSEEK_TRIAL_PARAMS`` (JSON) and
``DEEPSEEK_TRIAL_PARAMS_FILE`` (the same JSON in a file), or :func:`trial_params` — and gives its result back in
one of three ways: write ``{"<metric>": value}`` to ``DEEPSEEK_TRIAL_RESULT``, print a JSON object holding the
metric, or print ``<metric>: value`` (or ``<metric>=value``); the last such line counts. Intermediate values
(``report(value, step)``, one JSON line each in ``DEEPSEEK_TRIAL_REPORTS``) feed the pruner: a pruned script
is stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .._core.checks import check_number
from .._core.errors import DeepSeekError, invalid

PARAMS_ENV = "DEEPSEEK_TRIAL_PARAMS"
PARAMS_FILE_ENV = "DEEPSEEK_TRIAL_PARAMS_FILE"
RESULT_ENV = "DEEPSEEK_TRIAL_RESULT"
REPORTS_ENV = "DEEPSEEK_TRIAL_REPORTS"
NUMBER_ENV = "DEEPSEEK_TRIAL_NUMBER"


class TrialScriptError(DeepSeekError):
    """The trial's script failed, or finished without reporting the metric."""


def trial_params() -> dict[str, Any]:
    """This trial's parameters, inside a script that ``deepseek tune`` runs."""
    text = os.environ.get(PARAMS_ENV)
    if text is None and os.environ.get(PARAMS_FILE_ENV):
        text = Path(os.environ[PARAMS_FILE_ENV]).read_text()
    if text is None:
        raise DeepSeekError(f"{PARAMS_ENV}: not set (run this script under `deepseek tune ... -- python script.py`)")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeepSeekError(f"{PARAMS_ENV}: not JSON ({exc}); it is set by `deepseek tune`") from None
    if not isinstance(params, dict):
        raise DeepSeekError(f"{PARAMS_ENV}: got a JSON {type(params).__name__}, expected an object of parameters")
    return params


def report(value: float, step: int) -> None:
    """An intermediate value (e.g. validation accuracy after epoch ``step``) for the pruner; a no-op outside a
    trial. A trial the pruner stops is terminated while it runs."""
    path = os.environ.get(REPORTS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"step": int(step), "value": float(value)}) + "\n")
            f.flush()


class ScriptObjective:
    """Runs ``command`` for each trial and reads ``metric`` back; picklable, so worker processes can run it."""

    def __init__(self, command: list[str], metric: str, *, cwd: str | None = None, timeout_s: float | None = None,
                 poll_s: float = 0.2) -> None:
        import shutil

        if isinstance(command, str) or not isinstance(command, (list, tuple)) or not command or not all(
                isinstance(c, str) for c in command):
            raise invalid("command", command, "a non-empty list of strings, e.g. ['python', 'train.py']")
        program = command[0]
        if not (Path(cwd or ".", program).is_file() if os.sep in program else shutil.which(program)):
            raise invalid("command", command[0], "a program on PATH or an existing file to run for each trial")
        if not isinstance(metric, str) or not metric:
            raise invalid("metric", metric, "the name of the metric the script reports")
        if cwd is not None and not Path(cwd).is_dir():
            raise invalid("cwd", cwd, "an existing folder, or None")
        check_number(timeout_s, "timeout_s", above=0, optional=True, expected="seconds > 0, or None")
        check_number(poll_s, "poll_s", above=0, expected="seconds > 0")
        self.command, self.metric, self.cwd, self.timeout_s, self.poll_s = list(command), metric, cwd, timeout_s, poll_s

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        import optuna

        with tempfile.TemporaryDirectory(prefix="deepseek-trial-") as tmp:
            work = Path(tmp)
            (work / "params.json").write_text(json.dumps(params))
            (work / "reports.jsonl").touch()
            env = {**os.environ, PARAMS_ENV: json.dumps(params), PARAMS_FILE_ENV: str(work / "params.json"),
                   RESULT_ENV: str(work / "result.json"), REPORTS_ENV: str(work / "reports.jsonl"),
                   NUMBER_ENV: str(trial.number), "PYTHONUNBUFFERED": "1"}
            with open(work / "stdout", "w+") as out, open(work / "stderr", "w+") as err:
                proc = subprocess.Popen(self.command, stdout=out, stderr=err, env=env, cwd=self.cwd)
                pruned = self._watch(proc, trial, work / "reports.jsonl")
                out.seek(0)
                stdout = out.read()
                err.seek(0)
                stderr = err.read()
            if pruned is not None:
                raise optuna.TrialPruned(f"pruned at step {pruned}")
            if proc.returncode != 0:
                tail = " | ".join((stderr or stdout).strip().splitlines()[-3:])
                raise TrialScriptError(f"trial {trial.number}: `{' '.join(self.command)}` exited with "
                                       f"{proc.returncode}: {tail or '(no output)'}")
            return self._metric(work / "result.json", stdout, trial.number)

    def _watch(self, proc: subprocess.Popen, trial: Any, reports: Path) -> int | None:
        """Feed the script's reports to the pruner while it runs; stop it when pruned (returns the step)."""
        seen, started = 0, time.monotonic()
        while True:
            done = proc.poll() is not None
            lines = reports.read_text().splitlines()
            complete = lines if done else lines[:-1] if lines and not reports.read_text().endswith("\n") else lines
            for line in complete[seen:]:
                try:
                    entry = json.loads(line)
                    value, step = float(entry["value"]), int(entry["step"])
                except (ValueError, TypeError, KeyError, OverflowError):
                    _stop(proc)
                    raise TrialScriptError(f"trial {trial.number}: a report line is not "
                                           f'{{"step": N, "value": X}}: {line[:200]!r}') from None
                trial.report(value, step)
                if trial.should_prune():
                    _stop(proc)
                    return step
            seen = len(complete)
            if done:
                return None
            if self.timeout_s is not None and time.monotonic() - started > self.timeout_s:
                _stop(proc)
                raise TrialScriptError(f"trial {trial.number}: the script ran past {self.timeout_s:g} s")
            time.sleep(self.poll_s)

    def _metric(self, result_file: Path, stdout: str, number: int) -> float:
        if result_file.is_file():
            try:
                data = json.loads(result_file.read_text())
            except json.JSONDecodeError:
                raise TrialScriptError(f"trial {number}: ${RESULT_ENV} is not JSON") from None
            if isinstance(data, dict) and self.metric in data:
                return _finite(data[self.metric], number, self.metric)
            raise TrialScriptError(f"trial {number}: ${RESULT_ENV} has no {self.metric!r} (keys: {list(data)})")
        pattern = re.compile(rf"^\s*{re.escape(self.metric)}\s*[:=]\s*(\S+)\s*$")
        for line in reversed(stdout.splitlines()):
            stripped = line.strip()
            if stripped.startswith("{"):
                try:
                    data = json.loads(stripped)
                except json.JSONDecodeError:
                    continue
                if isinstance(data, dict) and self.metric in data:
                    return _finite(data[self.metric], number, self.metric)
            match = pattern.match(line)
            if match:
                return _finite(match.group(1), number, self.metric)
        raise TrialScriptError(f"trial {number}: the script finished without reporting {self.metric!r} (print "
                               f'`{self.metric}: 0.93`, a JSON line {{"{self.metric}": 0.93}}, or write it to ${RESULT_ENV})')


def _finite(value: Any, number: int, metric: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TrialScriptError(f"trial {number}: {metric} = {value!r}, expected a number") from None
    if not math.isfinite(out):
        raise TrialScriptError(f"trial {number}: {metric} = {out}, expected a finite number")
    return out


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
