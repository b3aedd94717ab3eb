"""Hyper-parameter search on Optuna from a YAML search space.

``deepseek.tune.run(objective, "hyperparameter_config.yaml")`` in Python, ``deepseek tune --config ... -- python
train.py`` from the shell; TPE by default; pruners fed by ``trial.report`` (or :class:`TrialReporter` in a
``DeepSeekTrainer``); in-memory, journal-file or database storage; several worker processes on one study.
"""

from __future__ import annotations

from typing import Any

from .config import PRUNERS, SAMPLERS, TuneConfig
from .script import ScriptObjective, TrialScriptError, report, trial_params
from .space import Param, parse_space
from .study import TuneError, TuneResult, open_study, run

__all__ = ["PRUNERS", "SAMPLERS", "Param", "ScriptObjective", "TrialReporter", "TrialScriptError", "TuneConfig",
           "TuneError", "TuneResult", "open_study", "parse_space", "report", "run", "trial_params"]


def __getattr__(name: str) -> Any:
    if name == "TrialReporter":  # imports torch (the trainer): only when asked for
        from .callbacks import TrialReporter

        return TrialReporter
    raise AttributeError(name)
