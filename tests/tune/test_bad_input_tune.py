"""Bad input to ``deepseek tune`` and ``deepseek.tune.run``: one clear line naming the flag or argument, exit 2,
the inputs untouched and no output (nor study journal) left behind; no trial runs (issue 28)."""

from __future__ import annotations

import pytest

from _refusals import leaves_unchanged, refused
from deepseek import InvalidArgumentError, tune
from deepseek.tune import ScriptObjective, TuneConfig

GOOD = "search_space:\n  x: {type: uniform, min: 0, max: 1}\nmetric: loss\nn_trials: 2\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --output (tune-results) lands here if anything is written
    (tmp_path / "t.yaml").write_text(GOOD)
    (tmp_path / "train.py").write_text("raise SystemExit('no trial may run')\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "dir").mkdir()
    configs = {"nospace.yaml": "metric: loss\n", "trials.yaml": GOOD.replace("n_trials: 2", "n_trials: x"),
               "storage.yaml": GOOD + "storage: 5\n", "method.yaml": GOOD + "method: [1]\n",
               "keys.yaml": GOOD + "1: 2\n", "min.yaml": "search_space: {x: {type: uniform, min: a, max: 1}}\n",
               "list.yaml": "- search_space\n", "space.yaml": "search_space: 5\n",
               "metric.yaml": GOOD.replace("metric: loss", "metric: {name: loss, speed: 2}"),
               "timeout.yaml": GOOD + "timeout: -1\n", "grid.yaml": GOOD + "sampler: grid\n"}
    for name, text in configs.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _tune(*flags: str, config: str = "t.yaml", command: tuple[str, ...] = ("python", "train.py")) -> list[str]:
    return ["tune", "--config", config, "--quiet", *flags, "--", *command]


CASES = [
    (_tune("--trial-timeout", "-5"), "--trial-timeout"),
    (_tune("--trial-timeout", "nan"), "--trial-timeout"),
    (_tune("--timeout", "0"), "--timeout"),
    (_tune("--workers", "0"), "--workers"),
    (_tune("--n-trials", "0"), "--n-trials"),
    (_tune("--study-name", ""), "--study-name"),
    (_tune("--sampler", "magic"), "--sampler"),
    (_tune("--output", "/proc/no/such"), "got '/proc/no/such'"),
    (_tune("--output", "t.yaml"), "--output"),
    (_tune("--output", "train.py"), "--output"),
    (_tune("--output", "data.csv"), "--output"),
    (_tune("--storage", "t.yaml"), "--storage"),
    (_tune("--storage", "train.py"), "--storage"),
    (_tune("--storage", "data.csv"), "--storage"),
    (_tune("--storage", "dir"), "--storage"),
    (_tune("--storage", "foo://bar"), "--storage"),
    (_tune("--storage", ""), "--storage"),
    (_tune("--storage", "dir", "--output", "dir"), "--output"),
    (_tune(command=()), "command"),
    (_tune(command=("no-such-program-here",)), "command"),
    (_tune(config="bin.yaml"), "--config"),
    (_tune(config="none.yaml"), "--config"),
    (_tune(config="list.yaml"), "--config"),
    (_tune(config="nospace.yaml"), "search_space"),
    (_tune(config="trials.yaml"), "n_trials"),
    (_tune(config="storage.yaml"), "storage"),
    (_tune(config="method.yaml"), "method"),
    (_tune(config="keys.yaml"), "--config"),
    (_tune(config="min.yaml"), "search_space.x.min"),
    (_tune(config="space.yaml"), "search_space"),
    (_tune(config="metric.yaml"), "metric"),
    (_tune(config="timeout.yaml"), "timeout"),
    (_tune(config="grid.yaml"), "grid"),
]


@pytest.mark.parametrize("argv, flag", CASES, ids=[" ".join(c[0][1:]) for c in CASES])
def test_cli_bad_input_is_one_line_naming_the_flag(argv, flag, folder, capsys):
    refused(argv, capsys, flag, unchanged=folder)  # inputs unchanged, no output or journal created


def _objective(params):
    return params["x"]


SPACE = {"search_space": {"x": {"type": "uniform", "min": 0, "max": 1}}, "n_trials": 2}

API_CASES = [
    (lambda f: tune.run(_objective, f / "bin.yaml", progress=False), "config"),
    (lambda f: tune.run(_objective, str(f / "nospace.yaml"), progress=False), "search_space"),
    (lambda f: tune.run(_objective, f / "keys.yaml", progress=False), "keys.yaml"),
    (lambda f: tune.run(_objective, f / "none.yaml", progress=False), "config"),
    (lambda f: tune.run(_objective, {"n_trials": 2}, progress=False), "search_space"),
    (lambda f: tune.run(_objective, 5, progress=False), "config"),
    (lambda f: tune.run("not callable", SPACE, progress=False), "objective"),
    (lambda f: tune.run(_objective, SPACE, workers=0, progress=False), "workers"),
    (lambda f: tune.run(_objective, SPACE, resume="yes", progress=False), "resume"),
    (lambda f: tune.run(_objective, SPACE, storage=5, progress=False), "storage"),
    (lambda f: tune.run(_objective, SPACE, study_name="", progress=False), "study_name"),
    (lambda f: tune.run(_objective, SPACE, storage=str(f / "data.csv"), progress=False), "storage"),
    (lambda f: tune.run(_objective, f / "t.yaml", storage=str(f / "t.yaml"), progress=False), "storage"),
    (lambda f: tune.run(_objective, SPACE, output=f / "data.csv", progress=False), "output"),
    (lambda f: tune.run(_objective, f / "t.yaml", output=f / "t.yaml", progress=False), "output"),
    (lambda f: tune.run(_objective, SPACE, output="/proc/no/such", progress=False), "/proc/no/such"),
    (lambda f: TuneConfig(search_space=SPACE["search_space"], storage=5), "storage"),
    (lambda f: TuneConfig.parse({**SPACE, "method": [1]}), "method"),
    (lambda f: ScriptObjective([], "loss"), "command"),
    (lambda f: ScriptObjective("python train.py", "loss"), "command"),
    (lambda f: ScriptObjective(["no-such-program-here"], "loss"), "command"),
    (lambda f: ScriptObjective(["python"], ""), "metric"),
    (lambda f: ScriptObjective(["python"], "loss", timeout_s=-5), "timeout_s"),
    (lambda f: ScriptObjective(["python"], "loss", poll_s=0), "poll_s"),
]


@pytest.mark.parametrize("call, argument", API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_python_api_bad_input_names_the_argument(call, argument, folder):
    with leaves_unchanged(folder), pytest.raises(InvalidArgumentError, match=argument):
        call(folder)
