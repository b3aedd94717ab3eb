"""Run a study: ``deepseek.tune.run(objective, "config.yaml")`` on Optuna, in this process or in worker processes.

The objective takes a trial's parameters (``objective(params)``) — or the parameters and the Optuna trial
(``objective(params, trial)``), to report intermediate values for pruning — and returns the metric (a number, or
a dict holding ``config.metric``).

Storage: none (in memory, this process only); a file path (an Optuna journal file: several processes on one
machine or a shared file system); or a database URL (Optuna RDB, e.g. ``postgresql+psycopg://user@host/db``) for
workers on several machines. SQLite is refused for parallel workers (its write lock serialises them and fails
with "database is locked" under contention).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._core.atomic import check_output, output_folder, refuse_overwrite_input
from .._core.checks import check_flag, check_int
from .._core.errors import DeepSeekError, invalid
from .config import TuneConfig
from .space import grid_space, suggest

WORKER_ATTR = "deepseek_worker"
ERROR_ATTR = "deepseek_error"
PARAMS_ATTR = "deepseek_params"


class TuneError(DeepSeekError):
    """The study could not run, or its first trials all failed (the reason of the first is in the message)."""


@dataclasses.dataclass
class TuneResult:
    """What a study found: ``best_params`` (flat, as the objective received them), ``best_value``, the trial
    counts by state, and the Optuna ``study`` for anything else (``study.trials_dataframe()``, dashboards)."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    complete: int
    pruned: int
    failed: int
    study: Any = dataclasses.field(repr=False)
    config: TuneConfig = dataclasses.field(repr=False)

    def trials(self) -> list[dict[str, Any]]:
        """One row per trial: number, state, value, seconds, parameters, and the error of a failed one."""
        return trial_rows(self.study)

    def write(self, output: str | Path) -> list[Path]:
        """``trials.csv``, ``trials.json``, ``best.json`` and the PNG plots in ``output``; the paths written."""
        from .results import write_report

        return write_report(self, Path(output))


def run(objective: Callable[..., Any], config: str | Path | Mapping[str, Any] | TuneConfig, *,
        storage: str | None = None, study_name: str | None = None, resume: bool = False, workers: int = 1,
        progress: bool = True, output: str | Path | None = None) -> TuneResult:
    """Search ``config``'s space for the best ``objective``; ``storage``/``study_name`` override the config's;
    ``resume`` continues an existing study (else an existing study of that name is refused); ``workers`` > 1
    runs that many processes on one study (``objective`` must be picklable and the storage shared)."""
    if not callable(objective):
        raise invalid("objective", type(objective).__name__, "a function of the trial's parameters")
    workers = check_int(workers, "workers", minimum=1)
    check_flag(resume, "resume")
    check_flag(progress, "progress")
    for name, value in (("storage", storage), ("study_name", study_name)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise invalid(name, value, "a non-empty string, or None")
    cfg = _config(config).replace(storage=storage, study_name=study_name)
    inputs = [config] if isinstance(config, (str, Path)) else []
    if output is not None:
        check_output(output, argument="output", inputs=inputs, folder=True)
    if cfg.storage is not None and "://" not in cfg.storage:
        refuse_overwrite_input(cfg.storage, *inputs, argument="storage")
        check_output(cfg.storage, argument="storage")
        if output is not None and Path(output).exists() and Path(cfg.storage).resolve() == Path(output).resolve():
            raise invalid("storage", cfg.storage, "a journal file path, not the output folder")
    if workers > 1 and cfg.storage is None:
        raise invalid("storage", None, "a journal file path or a database URL with workers > 1 (in-memory studies "
                                       "live in one process)")
    if workers > 1 and cfg.storage is not None and cfg.storage.startswith("sqlite"):
        raise invalid("storage", cfg.storage, "a journal file or a server database (PostgreSQL, MySQL) with "
                                              "workers > 1: SQLite locks the whole file per write")
    study = open_study(cfg, resume=resume)
    remaining = _remaining(study, cfg)
    with _progress_bar(progress, cfg, study) as tick:
        if workers == 1:
            _optimize(study, cfg, objective, remaining, tick)
        else:
            _supervise(cfg, objective, workers, study, tick)
    result = _result(study, cfg)
    if output is not None:
        result.write(output)
    return result


def open_study(cfg: TuneConfig, *, resume: bool = False, heartbeat: bool = False) -> Any:
    """The Optuna study ``cfg`` names, created — or loaded with ``resume`` — in its storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are in the trials table and our own errors
    storage = make_storage(cfg.storage, heartbeat=heartbeat)
    if storage is not None:
        try:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        except Exception as exc:  # a journal file of something else, a database that refuses
            raise _storage_error(cfg.storage, exc) from None
        if cfg.study_name in names and not resume:
            raise invalid("study_name", cfg.study_name, f"a new study name, or --resume to continue the one in "
                                                        f"{cfg.storage}")
    try:
        return optuna.create_study(storage=storage, sampler=make_sampler(cfg), pruner=make_pruner(cfg),
                                   study_name=cfg.study_name, direction=cfg.direction, load_if_exists=resume)
    except ValueError as exc:  # e.g. resuming a study whose direction differs
        raise invalid("study_name", cfg.study_name, f"a study this config can continue ({exc})") from None


def _storage_error(storage: str | None, exc: BaseException) -> TuneError:
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return TuneError(f"storage: cannot open {storage!r}, expected a journal file or a database Optuna can open "
                     f"({type(exc).__name__}: {detail})")


def make_storage(storage: str | None, *, heartbeat: bool = False) -> Any:
    """None (in memory), a journal file for a path, an RDB storage for a URL."""
    if storage is None:
        return None
    import optuna

    if "://" in storage:
        options = {"heartbeat_interval": 5, "grace_period": 20} if heartbeat and not storage.startswith("sqlite") else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(storage, **options)
        except Exception as exc:
            raise _storage_error(storage, exc) from None
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(storage)
    check_output(path, argument="storage")
    if path.is_file() and path.stat().st_size:  # never append a journal to a file of something else
        import json

        try:
            with open(path, "rb") as f:
                first = json.loads(f.readline().decode("utf-8"))
            if not isinstance(first, dict) or "op_code" not in first:
                raise ValueError("no op_code")
        except (ValueError, UnicodeDecodeError, OSError):
            raise invalid("storage", storage, "an Optuna journal file (this file holds something else), a new "
                                              "path or a database URL") from None
    output_folder(path.parent)
    try:
        # the open(O_EXCL) lock works on every POSIX file system, NFS included (symlink locks do not everywhere)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    except Exception as exc:  # a damaged journal
        raise _storage_error(storage, exc) from None


def make_sampler(cfg: TuneConfig) -> Any:
    import optuna

    seed = cfg.seed
    conditional = any(p.branches and any(ps for _, ps in p.branches) for p in cfg.params)
    if cfg.sampler == "tpe":
        # multivariate TPE models parameters jointly; group splits the space by which branch is active
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=conditional, constant_liar=True)
    if cfg.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if cfg.sampler == "cmaes":
        from .._core.errors import require

        require("cmaes", "sampler cmaes", "cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(grid_space(cfg.params), seed=seed)


def make_pruner(cfg: TuneConfig) -> Any:
    import optuna

    return {"none": optuna.pruners.NopPruner, "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                                                           n_warmup_steps=1),
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[cfg.pruner]()


def _config(config: Any) -> TuneConfig:
    if isinstance(config, TuneConfig):
        return config
    if isinstance(config, (str, Path)):
        return TuneConfig.from_yaml(config, argument="config")
    return TuneConfig.parse(config)


def _remaining(study: Any, cfg: TuneConfig) -> int | None:
    return None if cfg.n_trials is None else max(0, cfg.n_trials - len(study.get_trials(deepcopy=False)))


def _takes_trial(objective: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _wrap(cfg: TuneConfig, objective: Callable[..., Any]) -> Callable[[Any], float]:
    import optuna

    with_trial = _takes_trial(objective)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def run_trial(trial: Any) -> float:
        trial.set_user_attr(WORKER_ATTR, worker)
        params = suggest(cfg.params, trial)
        trial.set_user_attr(PARAMS_ATTR, params)
        try:
            return _metric_value(cfg, objective(params, trial) if with_trial else objective(params))
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, TuneError) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr(ERROR_ATTR, reason[:2000])
            raise

    return run_trial


def _metric_value(cfg: TuneConfig, value: Any) -> float:
    """The objective's return value as the study's number, or a TuneError saying what was wrong with it."""
    if isinstance(value, Mapping):
        if cfg.metric not in value:
            raise TuneError(f"objective: returned keys {sorted(value)}, expected {cfg.metric!r} among them")
        value = value[cfg.metric]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TuneError(f"objective: returned {value!r}, expected a number ({cfg.metric})") from None
    if not math.isfinite(number):
        raise TuneError(f"objective: returned {number}, expected a finite {cfg.metric}")
    return number


def _optimize(study: Any, cfg: TuneConfig, objective: Callable[..., Any], n_trials: int | None,
              tick: Callable[[Any], None], deadline: float | None = None) -> None:
    """Trials in this process until the budget is spent; stops at once if the first trials all fail."""
    import optuna

    def stop_if_hopeless(study: Any, trial: Any) -> None:
        tick(study)
        if trial.state == optuna.trial.TrialState.FAIL:
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if not done:
                study.stop()

    callbacks = [stop_if_hopeless]
    if cfg.n_trials is not None:  # the study's total, shared with other workers and earlier runs
        callbacks.append(optuna.study.MaxTrialsCallback(cfg.n_trials, states=None))
    timeout = cfg.timeout if deadline is None else max(0.0, deadline - time.time())
    if n_trials == 0 or (timeout is not None and timeout <= 0):
        return
    study.optimize(_wrap(cfg, objective), n_trials=n_trials, timeout=timeout, callbacks=callbacks,
                   catch=(Exception,), gc_after_trial=False, show_progress_bar=False)
    _raise_if_hopeless(study)


def _raise_if_hopeless(study: Any) -> None:
    import optuna

    trials = study.get_trials(deepcopy=False)
    if trials and not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
        if failed:
            reason = failed[0].user_attrs.get(ERROR_ATTR, "the objective raised")
            raise TuneError(f"objective: trial {failed[0].number} failed and none succeeded: {reason}")


def _worker(config: dict[str, Any], objective: Callable[..., Any], deadline: float | None, index: int) -> None:
    """One worker process: trials on the shared study until its budget or deadline. Each worker's sampler has its
    own seed (the config's + its index): with one seed, every worker would draw the same startup trials."""
    if config.get("seed") is not None:
        config = {**config, "seed": config["seed"] + index}
    cfg = TuneConfig.parse(config)
    study = open_study(cfg, resume=True, heartbeat=True)
    if _remaining(study, cfg) == 0:
        return
    try:
        _optimize(study, cfg, objective, None, lambda study: None, deadline)
    except TuneError:
        os._exit(3)  # the supervisor reports the failed trial's reason from the storage


def _supervise(cfg: TuneConfig, objective: Callable[..., Any], workers: int, study: Any,
               tick: Callable[[Any], None]) -> None:
    """``workers`` processes on ``study``; a worker that dies has its running trials marked failed and is
    replaced, so the study goes on."""
    ctx = multiprocessing.get_context("spawn")
    config = _as_dict(cfg)
    deadline = time.time() + cfg.timeout if cfg.timeout else None
    procs = [ctx.Process(target=_worker, args=(config, objective, deadline, i), daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    restarts = 0
    while procs:
        time.sleep(0.3)
        tick(study)
        for p in list(procs):
            if p.exitcode is None:
                continue
            procs.remove(p)
            if p.exitcode == 3:  # the first trials all failed: stop everyone
                for q in procs:
                    q.terminate()
                for q in procs:
                    q.join()
                _raise_if_hopeless(study)
                raise TuneError("objective: the first trials failed")
            if p.exitcode != 0:
                _fail_orphans(study, f"{socket.gethostname()}:{p.pid}", p.exitcode)
                budget_left = _remaining(study, cfg) != 0 and (deadline is None or time.time() < deadline)
                if budget_left and restarts < 3 * workers:
                    restarts += 1
                    q = ctx.Process(target=_worker, args=(config, objective, deadline, workers + restarts), daemon=True)
                    q.start()
                    procs.append(q)
    tick(study)


def _fail_orphans(study: Any, worker: str, exitcode: int) -> None:
    """Mark the running trials of a dead worker failed (journal storage has no heartbeat; we know who died)."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get(WORKER_ATTR) == worker:
            study._storage.set_trial_user_attr(t._trial_id, ERROR_ATTR, f"worker {worker} died (exit code {exitcode})")
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _as_dict(cfg: TuneConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def _result(study: Any, cfg: TuneConfig) -> TuneResult:
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    count = {s: states.count(s) for s in optuna.trial.TrialState}
    if not count[optuna.trial.TrialState.COMPLETE]:
        _raise_if_hopeless(study)
        raise TuneError("study: no trial completed (raise n_trials or timeout)")
    best = study.best_trial
    return TuneResult(best_params=dict(best.user_attrs.get(PARAMS_ATTR, best.params)), best_value=float(best.value),
                      best_trial=best.number, complete=count[optuna.trial.TrialState.COMPLETE],
                      pruned=count[optuna.trial.TrialState.PRUNED], failed=count[optuna.trial.TrialState.FAIL],
                      study=study, config=cfg)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "seconds": seconds,
                     **{f"param:{k}": v for k, v in t.user_attrs.get(PARAMS_ATTR, t.params).items()},
                     "error": t.user_attrs.get(ERROR_ATTR)})
    return rows


@contextlib.contextmanager
def _progress_bar(show: bool, cfg: TuneConfig, study: Any) -> Iterator[Callable[[Any], None]]:
    """A rich bar over the study's finished trials, its description the best value so far; a no-op when hidden."""
    if not show:
        yield lambda study: None
        return
    import optuna

    from .._core.progress import progress

    def tick(study: Any) -> None:
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        done = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
        text = "tuning"
        if done:
            best = (max if cfg.direction == "maximize" else min)(done, key=lambda t: t.value)
            text = f"best {cfg.metric} {best.value:.4g} (trial {best.number})"
        bar.update(task, completed=len(finished), description=text)

    with progress(transient=False) as bar:
        task = bar.add_task("tuning", total=cfg.n_trials)
        tick(study)
        yield tick
