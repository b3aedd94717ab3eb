"""``deepseek tune``: hyper-parameter search over a YAML search space, one script run per trial.

    deepseek tune --config hyperparameter_config.yaml [--workers N] [--storage URL|FILE] [--study-name NAME]
                  [--resume] [--n-trials N] [--timeout S] [--sampler tpe] [--pruner median] [--output DIR]
                  -- python train.py [ARGS]

The script reads its parameters with ``deepseek.tune.trial_params()`` (or ``$DEEPSEEK_TRIAL_PARAMS``) and prints
``<metric>: value``; ``deepseek.tune.report(value, step)`` feeds the pruner. Open the study in optuna-dashboard:
``optuna-dashboard STORAGE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._core.errors import invalid
from ..tune.config import PRUNERS, SAMPLERS

# the Python argument a library error names -> the flag the user wrote
_FLAGS = {"storage": "--storage", "study_name": "--study-name", "output": "--output", "workers": "--workers",
          "timeout_s": "--trial-timeout", "command": "command", "n_trials": "--n-trials"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs, number

    parser.add_argument("--config", required=True, metavar="YAML", help="the search space, metric and budget")
    parser.add_argument("--workers", type=count(), default=1, help="worker processes on one study (needs --storage; "
                        "default: a journal file in --output)")
    parser.add_argument("--storage", type=_name, default=None, help="a journal file path, or a database URL such as "
                        "postgresql+psycopg://user@host/db (default: the config's, else in memory)")
    parser.add_argument("--study-name", type=_name, default=None, help="default: the config's study_name (deepseek-tune)")
    parser.add_argument("--resume", action="store_true", help="continue the study of that name in the storage")
    parser.add_argument("--n-trials", type=count(), default=None, help="the study's total trials (overrides the config)")
    parser.add_argument("--timeout", type=number(above=0), default=None, metavar="SECONDS",
                        help="stop starting trials after this long")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None)
    parser.add_argument("--pruner", choices=PRUNERS, default=None)
    parser.add_argument("--trial-timeout", type=number(above=0), default=None, metavar="SECONDS",
                        help="stop a trial's script after this long (it counts as failed)")
    parser.add_argument("--output", default="tune-results", help="trials.csv/json, best.json and plots go here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(_passthrough=True)
    declare_outputs(parser, folders=("output",))
    declare_flag_names(parser, _FLAGS)


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a non-empty value, got {text!r}")
    return text


def run_cli(args: argparse.Namespace) -> int:
    from .._core.table import Table
    from ..tune.config import TuneConfig
    from ..tune.script import ScriptObjective
    from ..tune.study import run
    from ._common import console

    if not args.passthrough:
        raise invalid("command", None, "the trial script after --, e.g. deepseek tune --config c.yaml -- python train.py")
    cfg = TuneConfig.from_yaml(args.config, argument="--config")
    cfg = cfg.replace(n_trials=args.n_trials, timeout=args.timeout, sampler=args.sampler, pruner=args.pruner)
    storage = args.storage or cfg.storage
    if args.workers > 1 and storage is None:
        storage = str(Path(args.output) / "study.journal")  # several processes need a shared storage
    if storage is not None and "://" not in storage:
        from .._core.atomic import refuse_overwrite_input

        refuse_overwrite_input(storage, args.config, *[a for a in args.passthrough if Path(a).is_file()],
                               argument="--storage")
    objective = ScriptObjective(args.passthrough, cfg.metric, timeout_s=args.trial_timeout)
    result = run(objective, cfg, storage=storage, study_name=args.study_name, resume=args.resume,
                 workers=args.workers, progress=not args.quiet, output=args.output)
    table = Table(title=f"best {cfg.metric} {result.best_value:.6g} (trial {result.best_trial}); {result.complete} "
                        f"complete, {result.pruned} pruned, {result.failed} failed", title_justify="left")
    table.add_column("parameter")
    table.add_column("best value", justify="right")
    for name, value in result.best_params.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    console().print(table)
    where = f"; the study is in {storage} (optuna-dashboard {storage})" if storage else ""
    print(f"wrote {args.output}/trials.csv, trials.json, best.json and plots{where}")
    return 0
