"""Sharded checkpoints and CPU sync BatchNorm, in one process (the multi-process paths: test_distributed.py)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

import deepseek
from deepseek.train import SyncBatchNorm, convert_sync_batchnorm
from deepseek.train.dist_checkpoint import ShardedCheckpointer
from deepseek.train.state_tree import join_tensors, split_tensors


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    skeleton = split_tensors(state, "optim", tensors)
    import json

    rebuilt = join_tensors(json.loads(json.dumps(skeleton)), tensors)
    assert list(rebuilt["state"]) == [0, 1]  # int keys survive JSON
    assert rebuilt["param_groups"][0]["lr"] == 0.1 and rebuilt["param_groups"][0]["params"] == [0, 1]
    assert torch.equal(rebuilt["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    with pytest.raises(TypeError, match="cannot be checkpointed"):
        split_tensors({"f": object()}, "x", {})


def test_async_save_keeps_the_values_at_save_time_and_latest_skips_incomplete(tmp_path):
    ck = ShardedCheckpointer(tmp_path, keep=2)
    w = torch.arange(6, dtype=torch.float32)
    ck.save(1, {"w": w}, {"step": 1}, {"mine": "a"})
    w.add_(100)  # training goes on while the save runs
    ck.wait()
    ck.save(2, {"w": w}, {"step": 2})
    ck.save(3, {"w": w * 2}, {"step": 3})
    ck.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000002", "step_000000003"]  # keep=2
    (tmp_path / "step_000000004").mkdir()  # a save a dead worker never finished
    assert ck.latest() == tmp_path / "step_000000003"
    into = {"w": torch.zeros(6)}
    shared, _ = ck.load(ck.latest(), into)
    assert shared == {"step": 3} and torch.equal(into["w"], (torch.arange(6) + 100.0) * 2)
    first = ShardedCheckpointer(tmp_path / "other")
    first.save(1, {"w": torch.arange(6, dtype=torch.float32)}, {"step": 1})
    w2 = torch.zeros(6)
    first.wait()
    first.load(first.latest(), {"w": w2})
    assert torch.equal(w2, torch.arange(6, dtype=torch.float32))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_metadata_that_would_run_code_is_refused(tmp_path):
    ck = ShardedCheckpointer(tmp_path)
    ck.save(1, {"w": torch.ones(2)}, {"step": 1})
    ck.wait()
    (tmp_path / "step_000000001" / ".metadata").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(deepseek.ArtifactError, match="not part of a DCP checkpoint"):
        ck.load(ck.latest(), {"w": torch.zeros(2)})


def test_missing_key_is_a_clear_error(tmp_path):
    ck = ShardedCheckpointer(tmp_path)
    ck.save(1, {"w": torch.ones(2)}, {"step": 1})
    ck.wait()
    with pytest.raises(deepseek.ArtifactError, match="has no 'v'"):
        ck.load(ck.latest(), {"v": torch.zeros(2)})


def test_sync_batchnorm_without_a_group_is_batchnorm_and_conversion_keeps_state():
    import copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].running_mean.fill_(0.3)
    converted = convert_sync_batchnorm(copy.deepcopy(model))
    assert isinstance(converted[1], SyncBatchNorm) and not isinstance(model[1], SyncBatchNorm)
    assert torch.equal(converted[1].weight, model[1].weight)
    assert torch.equal(converted[1].running_mean, model[1].running_mean)
    x = torch.randn(8, 3, 10, 10)
    torch.testing.assert_close(converted(x), model(x))  # training mode: batch statistics, running ones updated
    torch.testing.assert_close(converted[1].running_mean, model[1].running_mean)
    converted.eval()
    model.eval()
    torch.testing.assert_close(converted(x), model(x))
