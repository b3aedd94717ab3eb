import copy
import itertools
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from deepseek import InvalidArgumentError
from deepseek.pruning import SparsityScheduler, sparsity_at, sparsity_report
from deepseek.pruning.masks import current_mask, is_masked


def mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 4))


def cnn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 4 * 4, 5))


@pytest.mark.parametrize("schedule", ["cubic", "linear", "exponential", "one_shot"])
def test_schedules_start_and_end_where_asked_and_never_go_back(schedule):
    values = [sparsity_at(t, target=0.9, start_step=100, end_step=1100, initial=0.1, schedule=schedule) for t in range(0, 1300, 50)]
    assert values[0] == 0.1 and values[-1] == 0.9
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))
    if schedule == "cubic":  # Zhu & Gupta: s = s_f + (s_i - s_f)(1 - progress)^3
        assert sparsity_at(600, target=0.9, start_step=100, end_step=1100, initial=0.1) == pytest.approx(0.9 - 0.8 * 0.5**3)
    if schedule == "one_shot":
        assert values[2] == 0.9  # step 100


def test_spec_loop_reaches_the_target_and_masks_survive_the_optimizer():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = SparsityScheduler(target_sparsity=0.7, prune_freq=100, prune_method="magnitude")
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    for global_step in range(1200):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if global_step % 100 == 0:
            scheduler.step(model)
        opt.step()
        if global_step in (150, 650):
            # weights pruned so far stay exactly zero in what the model computes, despite momentum updates
            for m in model:
                if isinstance(m, torch.nn.Linear):
                    assert torch.all(m.weight[current_mask(m) == 0] == 0)
    history = scheduler.history
    assert [h["step"] for h in history] == list(range(0, 1200, 100))
    assert history[0]["sparsity"] == 0.0
    assert all(h["sparsity"] == pytest.approx(h["target"], abs=1e-3) for h in history)
    assert history[-1]["sparsity"] == pytest.approx(0.7, abs=1e-3)
    report = sparsity_report(model)
    assert report.sparsity == pytest.approx(0.7, abs=1e-3)
    with torch.no_grad():  # the pruned model still computes: effective weights are the masked ones
        dense = copy.deepcopy(model)
        scheduler.finalize(dense)
        torch.testing.assert_close(dense(x), model(x))


def test_global_scope_prunes_redundant_layers_more_and_local_prunes_evenly():
    model = mlp()
    with torch.no_grad():
        model[2].weight.mul_(0.01)  # a layer of tiny weights: global magnitude ranking takes it first
    SparsityScheduler(0.5, 1, schedule="one_shot").step(model)
    layers = {ly.name: ly.sparsity for ly in sparsity_report(model).layers}
    assert layers["2"] > 0.68 and layers["0"] < 0.01 and layers["4"] < 0.02  # ~all 2816 from layer 2 (of 4096)
    local = mlp()
    SparsityScheduler(0.5, 1, schedule="one_shot", scope="local").step(local)
    assert all(ly.sparsity == pytest.approx(0.5, abs=0.01) for ly in sparsity_report(local).layers)


def test_magnitude_prunes_the_smallest_weights():
    model = torch.nn.Sequential(torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -0.1, 2.0, -0.3]]))
    SparsityScheduler(0.5, 1, schedule="one_shot").step(model)
    assert model[0].weight.tolist() == [[0.5, 0.0, 2.0, 0.0]]


def test_taylor_uses_gradients_and_refuses_without_them():
    model = torch.nn.Sequential(torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0]]))
    sched = SparsityScheduler(0.5, 1, prune_method="taylor", schedule="one_shot")
    with pytest.raises(InvalidArgumentError, match="taylor"):
        sched.step(model)
    model(torch.tensor([[0.0, 3.0, 0.1, 2.0]])).sum().backward()  # grad = the input: |w·g| ranks 1 > 3 > 2 > 0
    sched.step(model)
    assert model[0].weight.tolist() == [[0.0, 1.0, 0.0, 1.0]]


def test_skip_keeps_layers_dense_and_finalize_leaves_a_plain_model(tmp_path, printed_table):
    model = cnn()
    sched = SparsityScheduler(0.6, 10, skip=("4",), start_step=0, end_step=20)
    for step in (0, 10, 20):
        sched.step(model, step=step)
    layers = {ly.name: ly for ly in sparsity_report(model).layers}
    assert layers["4"].zeros == 0
    assert is_masked(model[0])
    sched.finalize(model)
    assert not any(is_masked(m) or hasattr(m, "parametrizations") for m in model.modules())
    assert set(model.state_dict()) == set(cnn().state_dict())
    save_file(model.state_dict(), tmp_path / "pruned.safetensors")
    reloaded = cnn()
    reloaded.load_state_dict(load_file(tmp_path / "pruned.safetensors"))
    pruned_share = sparsity_report(reloaded).sparsity
    assert pruned_share == pytest.approx(sparsity_report(model).sparsity) and pruned_share > 0.3
    report = sched.report(model)
    data = json.loads(report.save_json(tmp_path / "r.json").read_text())
    assert data["layers"][0]["name"] == "0" and 0 < data["layers"][0]["sparsity"] < 1
    assert "sparsity" in str(report.table().title)
    printed_table(report.table(), "sparsity")


@pytest.mark.parametrize("kwargs, argument", [
    ({"target_sparsity": 1.0}, "target_sparsity"),
    ({"target_sparsity": -0.1}, "target_sparsity"),
    ({"prune_freq": 0}, "prune_freq"),
    ({"prune_method": "psychic"}, "prune_method"),
    ({"schedule": "sine"}, "schedule"),
    ({"scope": "everywhere"}, "scope"),
    ({"start_step": 100, "end_step": 50}, "end_step"),
    ({"initial_sparsity": 0.9}, "initial_sparsity"),
])
def test_bad_config_names_the_argument(kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=argument):
        SparsityScheduler(**kwargs)


def test_bad_model_and_step():
    with pytest.raises(InvalidArgumentError, match="model"):
        SparsityScheduler().step(torch.nn.ReLU())
    with pytest.raises(InvalidArgumentError, match="step"):
        SparsityScheduler().step(mlp(), step=-1)
