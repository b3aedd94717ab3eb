"""Pruning from inside training: :class:`TrialReporter` reports each epoch's metric to the Optuna trial and stops a
trial the pruner gives up on."""

from __future__ import annotations

from typing import Any

from .._core.errors import invalid
from ..train import Callback


class TrialReporter(Callback):
    """A :class:`deepseek.train.DeepSeekTrainer` callback: after each epoch, ``trial.report(metrics[metric], epoch)``;
    raises ``optuna.TrialPruned`` when the pruner says so (the study marks the trial pruned and goes on)."""

    def __init__(self, trial: Any, metric: str = "eval_accuracy") -> None:
        if not hasattr(trial, "report") or not hasattr(trial, "should_prune"):
            raise invalid("trial", type(trial).__name__, "the optuna trial the objective received")
        self.trial, self.metric = trial, metric

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        import optuna

        if self.metric not in metrics:
            raise invalid("metric", self.metric, f"one of the epoch's metrics {sorted(metrics)} (pass eval_data to "
                                                 "fit for eval_accuracy and eval_loss)")
        epoch = int(metrics.get("epoch", trainer.epoch))
        self.trial.report(float(metrics[self.metric]), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: {self.metric} {metrics[self.metric]:.4g}")
