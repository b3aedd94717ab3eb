import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.pruning import DynamicSparseTraining, sparsity_report
from deepseek.pruning.masks import current_mask


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))


def test_rigl_keeps_sparsity_constant_moves_connections_and_regrows_from_zero():
    model = _model()
    dst = DynamicSparseTraining(0.9, 0.05, update_freq=10, end_step=100)
    dst.start(model)
    assert sparsity_report(model).sparsity == pytest.approx(0.9, abs=1e-3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(128, 16), torch.randint(0, 4, (128,))
    before = current_mask(model[0]).clone()
    moved = 0
    for step in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        n = dst.step(model, step)
        if n:
            grown = (current_mask(model[0]) > 0) & (before == 0)
            assert torch.all(model[0].weight[grown] == 0)  # regrown connections start at zero (RigL)
        moved += n
        opt.step()
    after = current_mask(model[0])
    assert moved > 0 and [u["step"] for u in dst.updates] == [10, 20, 30, 40, 50]
    assert (after != before).any()  # the topology changed
    masks = [current_mask(model[0]), current_mask(model[2])]
    held = sum(int((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks)
    assert held == pytest.approx(0.9, abs=1e-3)  # ... at constant sparsity (regrown weights may still be ~0)
    assert dst.updates[0]["fraction"] > dst.updates[-1]["fraction"]  # cosine decay
    dst.finalize(model)
    assert sparsity_report(model).sparsity >= 0.89


def test_regrowth_follows_the_gradient():
    model = torch.nn.Sequential(torch.nn.Linear(8, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[8.0, 7, 6, 5, 4, 3, 2, 1]]))
    dst = DynamicSparseTraining(0.5, 0.5, update_freq=1, end_step=1000)
    dst.start(model)  # keeps 8, 7, 6, 5
    model(torch.tensor([[0, 0, 0, 0, 0, 0, 0, 9.0]])).sum().backward()  # only input 7 has a gradient
    dst.step(model, 1)
    mask = current_mask(model[0]).flatten().tolist()
    assert mask[7] == 1 and mask[3] == 0  # dropped the weakest active (5), regrew where the gradient is


def test_bad_use():
    with pytest.raises(InvalidArgumentError, match="sparsity"):
        DynamicSparseTraining(1.0)
    with pytest.raises(InvalidArgumentError, match="regrow_fraction"):
        DynamicSparseTraining(0.9, 0.0)
    dst = DynamicSparseTraining(0.5, update_freq=1)
    model = _model()
    with pytest.raises(InvalidArgumentError, match="start"):
        dst.step(model, 1)
    dst.start(model)
    with pytest.raises(InvalidArgumentError, match="backward"):
        dst.step(model, 1)
