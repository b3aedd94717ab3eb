import pytest
import torch

import deepseek
from deepseek import assets
from deepseek.train import Callback, DeepSeekTrainer


def mlp(dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                               torch.nn.Linear(64, 10))


@pytest.fixture(scope="module")
def digits():
    return assets.digits().split(0.2, seed=0)


def test_fit_learns_real_digits_and_keeps_history(digits):
    train, test = digits
    trainer = DeepSeekTrainer(mlp(), {"type": "AdamW", "lr": 3e-3, "weight_decay": 0.01, "clip_grad_norm": 1.0,
                                      "scheduler": "cosine", "warmup_steps": 5}, batch_size=32, progress=False)
    history = trainer.fit(train, epochs=6, eval_data=test)
    assert [h["epoch"] for h in history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert history[-1]["eval_accuracy"] > 0.9 and history[-1]["eval_loss"] < history[0]["eval_loss"]
    assert trainer.step == 6 * -(-len(train) // 32)


def test_accumulation_equals_one_large_batch(digits):
    train, _ = digits
    big = DeepSeekTrainer(mlp(), {"type": "SGD", "lr": 0.1}, batch_size=64, progress=False, precision="fp32")
    small = DeepSeekTrainer(mlp(), {"type": "SGD", "lr": 0.1}, {"gradient_accumulation": 4}, batch_size=16,
                            progress=False, precision="fp32")
    big.fit(train, epochs=1)
    small.fit(train, epochs=1)
    assert small.step == big.step
    for a, b in zip(big.model.parameters(), small.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


class _Crash(RuntimeError):
    pass


class _CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, trainer, metrics):
        if trainer.step == self.at:
            raise _Crash(f"worker died after step {self.at}")


@pytest.mark.parametrize("incremental", [False, True])
def test_resume_after_a_crash_matches_an_uninterrupted_run(digits, tmp_path, incremental):
    train, _ = digits
    config = {"type": "AdamW", "lr": 1e-3, "scheduler": "linear"}
    straight = DeepSeekTrainer(mlp(0.2), config, batch_size=32, seed=3, progress=False, precision="fp32")
    straight.fit(train, epochs=2)
    torch.manual_seed(123)  # global RNG differs from the straight run's here: the checkpoint must restore it
    crashed = DeepSeekTrainer(mlp(0.2), config, batch_size=32, seed=3, progress=False, precision="fp32",
                              checkpoint_path=tmp_path, checkpoint_every=1, callbacks=[_CrashAt(60)],
                              incremental_checkpoints=incremental)
    with pytest.raises(_Crash):
        crashed.fit(train, epochs=2)
    if incremental:  # an IncrementalCheckpointer store: the newest two steps kept
        assert len(list((tmp_path / "manifests").glob("step_*.json"))) == 2
    torch.manual_seed(999)
    resumed = DeepSeekTrainer(torch.nn.Sequential(*mlp(0.2)), config, batch_size=32, seed=3, progress=False,
                              precision="fp32", checkpoint_path=tmp_path, incremental_checkpoints=incremental)
    with torch.no_grad():
        for p in resumed.model.parameters():
            p.add_(1.0)  # different weights before resuming: they must come from the checkpoint
    resumed.fit(train, epochs=2)
    assert resumed.step == straight.step and resumed.epoch == 2
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_callbacks_see_unscaled_clipped_gradients(digits):
    train, _ = digits
    norms = []

    class Probe(Callback):
        def before_optimizer_step(self, trainer):
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    trainer = DeepSeekTrainer(mlp(), {"type": "SGD", "lr": 0.5, "gradient_clip_val": 0.05}, batch_size=64,
                              precision="fp16", callbacks=[Probe()], progress=False)  # Lightning's spelling
    trainer.fit(train, epochs=1)
    assert trainer.scaler.enabled and trainer.optim.clip_grad_norm == 0.05
    assert norms and max(norms) <= 0.05 * 1.001  # unscaled before clipping: the true norm is clipped


def test_bf16_autocast_trains(digits):
    train, test = digits
    trainer = DeepSeekTrainer(mlp(), {"type": "Adam", "lr": 3e-3}, precision="bf16", batch_size=32, progress=False)
    assert trainer.fit(train, epochs=2, eval_data=test)[-1]["eval_accuracy"] > 0.85


def test_bad_configs_are_refused_before_training():
    model = mlp()
    with pytest.raises(deepseek.InvalidArgumentError, match=r"optimizer_config\.type"):
        DeepSeekTrainer(model, {"type": "Adamax"})
    with pytest.raises(deepseek.InvalidArgumentError, match="gradient_accumulation"):
        DeepSeekTrainer(model, None, {"gradient_accumulation": 0})
    with pytest.raises(deepseek.InvalidArgumentError, match="optimizer_config"):
        DeepSeekTrainer(model, {"type": "SGD", "learning_rate": 0.1, "lr": 0.2})  # one spelling only
    with pytest.raises(deepseek.InvalidArgumentError, match="optimizer_config"):
        DeepSeekTrainer(model, {"typo": 1})
    with pytest.raises(deepseek.InvalidArgumentError, match="precision"):
        DeepSeekTrainer(model, precision="int4")
    with pytest.raises(deepseek.InvalidArgumentError, match="epochs"):
        DeepSeekTrainer(model, progress=False).fit(assets.digits(), epochs=0)
