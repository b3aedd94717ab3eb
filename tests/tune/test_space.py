"""Search spaces from YAML: every type, the Optuna/W&B/Ray spellings, conditional parameters, and clear refusals."""

from __future__ import annotations

import pytest
import yaml

from deepseek._core.errors import InvalidArgumentError
from deepseek.tune import TuneConfig, parse_space

SPEC_YAML = """
search_space:
  learning_rate: {type: log_uniform, min: 1e-5, max: 1e-3}
  batch_size: {type: choice, options: [32, 64, 128]}
  dropout: {type: uniform, min: 0.1, max: 0.5}
"""


def test_the_spec_yaml_parses_with_yaml_1_1_exponents():
    cfg = TuneConfig.parse(yaml.safe_load(SPEC_YAML))  # PyYAML reads 1e-5 as a string: accepted as a number
    lr, batch, dropout = cfg.params
    assert (lr.kind, lr.low, lr.high) == ("log_uniform", 1e-5, 1e-3)
    assert (batch.kind, batch.options) == ("choice", (32, 64, 128))
    assert (dropout.kind, dropout.low, dropout.high) == ("uniform", 0.1, 0.5)
    assert (cfg.metric, cfg.direction, cfg.sampler, cfg.pruner, cfg.n_trials) == ("metric", "minimize", "tpe", "none", 20)


def test_other_libraries_spellings_map_to_ours():
    params = parse_space({
        "a": {"type": "uniform", "low": 0, "high": 2},                      # Optuna
        "b": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1},  # W&B
        "c": {"values": ["x", "y"]},                                         # W&B / Ray
        "d": {"type": "randint", "min": 1, "max": 9, "step": 2},             # Ray
        "e": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.3},    # W&B; top of the grid: 0.9
        "f": [1, 2, 3],                                                      # a bare list is a choice
        "g": {"type": "float", "low": 1e-3, "high": 1, "log": True},         # Optuna's suggest_float(log=True)
    })
    kinds = {p.name: p.kind for p in params}
    assert kinds == {"a": "uniform", "b": "log_uniform", "c": "choice", "d": "int_uniform", "e": "quniform",
                     "f": "choice", "g": "log_uniform"}
    by = {p.name: p for p in params}
    assert by["d"].grid() == [1, 3, 5, 7, 9]
    assert by["e"].grid() == pytest.approx([0.0, 0.3, 0.6, 0.9])


def test_wandb_sweep_fields():
    cfg = TuneConfig.parse({"method": "random", "metric": {"name": "val_acc", "goal": "maximize"}, "run_cap": 7,
                            "parameters": {"lr": {"distribution": "uniform", "min": 0.1, "max": 0.2}}})
    assert (cfg.sampler, cfg.metric, cfg.direction, cfg.n_trials) == ("random", "val_acc", "maximize", 7)


@pytest.mark.parametrize(("space", "words"), [
    ({"lr": {"type": "log_uniform", "min": -5, "max": -3}}, ["search_space.lr.min", "> 0", "W&B", "exponents"]),
    ({"lr": {"type": "uniform", "min": 1, "max": 1}}, ["search_space.lr", "min < max"]),
    ({"lr": {"type": "uniform", "min": 2, "max": 1}}, ["min < max"]),
    ({"bs": {"type": "choice", "options": []}}, ["search_space.bs.options", "non-empty"]),
    ({"bs": {"type": "choice", "options": [1, 1]}}, ["distinct"]),
    ({"x": {"type": "normal", "min": 0, "max": 1}}, ["search_space.x.type", "'normal'", "log_uniform"]),
    ({"x": {"type": "uniform", "min": 0, "mx": 1}}, ["search_space.x", "'mx'"]),
    ({"x": {"type": "uniform", "min": "zero", "max": 1}}, ["search_space.x.min", "finite number"]),
    ({"x": {"type": "int_uniform", "min": 0.5, "max": 3}}, ["integer bounds"]),
    ({"x": {"type": "quniform", "min": 0, "max": 1}}, ["search_space.x.q"]),
    ({}, ["search_space", "mapping"]),
])
def test_bad_spaces_are_refused_naming_the_parameter(space, words):
    with pytest.raises(InvalidArgumentError) as err:
        TuneConfig.parse({"search_space": space})
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize(("field", "value", "word"), [
    ("direction", "up", "direction"), ("n_trials", 0, "n_trials"), ("sampler", "bohb", "sampler"),
    ("pruner", "asha", "pruner"), ("timeout", -1, "timeout"), ("seed", 1.5, "seed"), ("colour", 1, "colour")])
def test_bad_study_fields_are_refused(field, value, word):
    with pytest.raises(InvalidArgumentError, match=word):
        TuneConfig.parse({"search_space": {"x": {"type": "uniform", "min": 0, "max": 1}}, field: value})


def test_grid_needs_a_finite_space():
    with pytest.raises(InvalidArgumentError, match="no grid"):
        TuneConfig.parse({"search_space": {"x": {"type": "uniform", "min": 0, "max": 1}}, "sampler": "grid"})
    cond = {"opt": {"type": "choice", "options": {"sgd": {"m": {"type": "uniform", "min": 0, "max": 1}}, "adam": None}}}
    with pytest.raises(InvalidArgumentError, match="conditional"):
        TuneConfig.parse({"search_space": cond, "sampler": "grid"})


def test_conditional_parameters_live_in_their_branch_and_the_yaml_round_trips():
    space = {"optimizer": {"type": "choice", "options": {
        "sgd": {"lr": {"type": "log_uniform", "min": 1e-3, "max": 1}, "momentum": {"type": "uniform", "min": 0, "max": 0.99}},
        "adam": {"lr": {"type": "log_uniform", "min": 1e-5, "max": 1e-2}}}},
        "layers": {"type": "int_uniform", "min": 1, "max": 4}}
    params = parse_space(space)
    opt = params[0]
    assert opt.options == ("sgd", "adam")
    branches = dict(opt.branches)
    assert [p.key for p in branches["sgd"]] == ["optimizer=sgd/lr", "optimizer=sgd/momentum"]
    assert [p.key for p in branches["adam"]] == ["optimizer=adam/lr"]
    again = parse_space({p.name: p.to_dict() for p in params})
    assert again == params
