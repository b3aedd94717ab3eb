"""TrialReporter: a DeepSeekTrainer reports each epoch's accuracy to the trial, and a trial the pruner gives up on
stops training after that epoch (real training on scikit-learn's digits)."""

from __future__ import annotations

import optuna
import pytest
import torch

from deepseek import assets
from deepseek.train import DeepSeekTrainer
from deepseek.tune import TrialReporter


def _train(lr, trial, epochs=3):
    torch.manual_seed(0)
    train, test = assets.digits().split(0.8, seed=0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    trainer = DeepSeekTrainer(model, {"type": "SGD", "lr": lr}, callbacks=[TrialReporter(trial, "eval_accuracy")],
                              batch_size=64, progress=False)
    history = trainer.fit(train, epochs=epochs, eval_data=test)
    return history[-1]["eval_accuracy"]


def test_a_trial_behind_the_median_stops_after_its_first_epoch():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                                        n_warmup_steps=0))
    epochs_seen = {}

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-6, 1.0, log=True)
        try:
            return _train(lr, trial)
        finally:
            epochs_seen[trial.number] = sorted(trial.storage.get_trial(trial._trial_id).intermediate_values)

    for lr in (0.3, 0.2, 1e-6):  # two good learning rates, then one that cannot learn in 3 epochs
        study.enqueue_trial({"lr": lr})
    study.optimize(objective, n_trials=3)
    states = [t.state for t in study.trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2 and study.trials[0].value > 0.5
    assert states[2] == optuna.trial.TrialState.PRUNED
    assert epochs_seen[0] == [1, 2, 3] and epochs_seen[2] == [1]  # reported per epoch; the bad one stopped at 1


def test_a_metric_the_epoch_does_not_have_is_named():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(Exception, match=r"'f1'.*eval_accuracy"):
        torch.manual_seed(0)
        train, _ = assets.digits().split(0.8, seed=0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        trainer = DeepSeekTrainer(model, {"type": "SGD", "lr": 0.1}, callbacks=[TrialReporter(trial, "f1")],
                                  progress=False)
        trainer.fit(train, epochs=1, eval_data=train)
