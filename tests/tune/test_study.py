"""deepseek.tune.run on Optuna: samplers respect the space, pruners stop bad trials, failures are clear, studies
persist in journal files and PostgreSQL, and several worker processes share one study."""

from __future__ import annotations

import math

import optuna
import pytest

from deepseek import tune
from deepseek._core.errors import InvalidArgumentError

SPACE = {"x": {"type": "uniform", "min": -5, "max": 10}, "y": {"type": "uniform", "min": 0, "max": 15}}
MIXED = {"opt": {"type": "choice", "options": {"sgd": {"momentum": {"type": "uniform", "min": 0, "max": 0.99}},
                                               "adam": {"lr": {"type": "log_uniform", "min": 1e-5, "max": 1e-1}}}},
         "n": {"type": "int_uniform", "min": 1, "max": 8, "step": 1}, "q": {"type": "quniform", "min": 0, "max": 1, "q": 0.25},
         "act": {"type": "choice", "options": ["relu", "gelu"]}}


def branin(params):
    x, y = params["x"], params["y"]
    return ((y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


def mixed(params):
    return params["n"] + params["q"] + (params["momentum"] if params["opt"] == "sgd" else -math.log10(params["lr"]) / 5)


def test_best_params_are_the_objectives_and_tpe_finds_the_branin_basin():
    result = tune.run(branin, {"search_space": SPACE, "n_trials": 40, "seed": 0}, progress=False)
    assert result.complete == 40 and result.failed == 0
    assert branin(result.best_params) == result.best_value  # what was measured, for the params reported
    assert result.best_value < 1.5  # the global minimum is 0.398; random search's best of 40 is ~1-3


@pytest.mark.parametrize("sampler", ["tpe", "gp", "cmaes", "random"])
def test_every_sampler_stays_in_the_space(sampler):
    result = tune.run(mixed, {"search_space": MIXED, "n_trials": 12, "sampler": sampler, "seed": 1}, progress=False)
    assert result.complete == 12
    for row in result.trials():
        p = {k[6:]: v for k, v in row.items() if k.startswith("param:") and v is not None and v == v}
        assert isinstance(p["n"], int) and 1 <= p["n"] <= 8
        assert p["q"] in (0.0, 0.25, 0.5, 0.75, 1.0) and p["act"] in ("relu", "gelu")
        if p["opt"] == "sgd":
            assert 0 <= p["momentum"] <= 0.99 and "lr" not in p
        else:
            assert 1e-5 <= p["lr"] <= 1e-1 and "momentum" not in p


def test_grid_search_tries_each_point_once_then_stops():
    space = {"n": {"type": "int_uniform", "min": 1, "max": 3}, "c": {"type": "choice", "options": ["a", "b"]}}
    result = tune.run(lambda p: p["n"], {"search_space": space, "n_trials": 50, "sampler": "grid"}, progress=False)
    points = sorted((r["param:n"], r["param:c"]) for r in result.trials())
    assert points == [(n, c) for n in (1, 2, 3) for c in ("a", "b")]


def test_the_median_pruner_stops_trials_behind_the_median():
    def objective(params, trial):
        for step in range(5):  # a learning curve: a worse x is worse at every step
            value = (params["x"] - 2) ** 2 + 1.0 / (step + 1)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    result = tune.run(objective, {"search_space": {"x": {"type": "uniform", "min": -10, "max": 10}}, "n_trials": 30,
                                  "pruner": "median", "sampler": "random", "seed": 0}, progress=False)
    assert result.pruned >= 5 and result.complete + result.pruned == 30


def test_a_failing_objective_stops_the_study_with_its_reason():
    def broken(params):
        raise ValueError("no such column 'label'")

    with pytest.raises(tune.TuneError, match="no such column 'label'"):
        tune.run(broken, {"search_space": SPACE, "n_trials": 10}, progress=False)
    with pytest.raises(tune.TuneError, match="expected a number"):
        tune.run(lambda p: "high", {"search_space": SPACE, "n_trials": 3}, progress=False)
    with pytest.raises(tune.TuneError, match="'loss'"):
        tune.run(lambda p: {"acc": 1.0}, {"search_space": SPACE, "n_trials": 3, "metric": "loss"}, progress=False)


def test_a_flaky_objective_after_a_success_is_counted_and_the_study_goes_on():
    def flaky(params):
        if params["x"] > 5:
            raise RuntimeError("out of memory")
        return params["x"]

    result = tune.run(flaky, {"search_space": SPACE, "n_trials": 20, "sampler": "random", "seed": 3}, progress=False)
    assert result.failed > 0 and result.complete + result.failed == 20
    assert all("out of memory" in r["error"] for r in result.trials() if r["state"] == "FAIL")


def test_a_journal_study_resumes_and_refuses_a_silent_overwrite(tmp_path):
    journal = str(tmp_path / "study.journal")
    cfg = {"search_space": SPACE, "n_trials": 5, "study_name": "s"}
    tune.run(branin, cfg, storage=journal, progress=False)
    with pytest.raises(InvalidArgumentError, match="--resume"):
        tune.run(branin, cfg, storage=journal, progress=False)
    result = tune.run(branin, {**cfg, "n_trials": 9}, storage=journal, resume=True, progress=False)
    assert result.complete == 9  # the study's total: 5 before, 4 more now
    assert len({r["number"] for r in result.trials()}) == 9


def _check_shared_study(result, n_trials):
    numbers = sorted(r["number"] for r in result.trials())
    assert numbers == list(range(len(numbers))) and len(numbers) >= n_trials  # none lost, none numbered twice
    values = [(r["param:x"], r["param:y"]) for r in result.trials()]
    assert len(set(values)) == len(values)  # workers seeded apart: no trial drawn twice
    assert result.failed == 0 and result.complete >= n_trials


def test_two_workers_share_a_journal_file(tmp_path):
    result = tune.run(branin, {"search_space": SPACE, "n_trials": 16}, storage=str(tmp_path / "j.journal"),
                      workers=2, progress=False)
    _check_shared_study(result, 16)


def test_two_workers_share_a_postgresql_database(postgres_url):
    result = tune.run(branin, {"search_space": SPACE, "n_trials": 16, "study_name": "pg"}, storage=postgres_url,
                      workers=2, progress=False)
    _check_shared_study(result, 16)
    again = tune.run(branin, {"search_space": SPACE, "n_trials": 20, "study_name": "pg"}, storage=postgres_url,
                     resume=True, progress=False)
    assert again.complete >= 20


def test_workers_need_shared_storage_and_not_sqlite(tmp_path):
    with pytest.raises(InvalidArgumentError, match="journal file"):
        tune.run(branin, {"search_space": SPACE}, workers=2, progress=False)
    with pytest.raises(InvalidArgumentError, match="SQLite"):
        tune.run(branin, {"search_space": SPACE}, storage=f"sqlite:///{tmp_path}/x.db", workers=2, progress=False)
    with pytest.raises(tune.TuneError, match="cannot open"):
        tune.run(branin, {"search_space": SPACE}, storage="postgresql+psycopg://nobody@127.0.0.1:1/none", progress=False)


def test_results_are_written_as_tables_and_plots(tmp_path):
    result = tune.run(branin, {"search_space": SPACE, "n_trials": 8}, progress=False, output=tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["best.json", "history.png", "importances.png", "parallel.png", "trials.csv", "trials.json"]
    assert (tmp_path / "out" / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("number,state,value,seconds") and len(lines) == 9
    assert result.best_trial in [int(line.split(",")[0]) for line in lines[1:]]
