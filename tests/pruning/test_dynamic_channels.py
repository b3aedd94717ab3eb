"""Dynamic channel selection (FBS-style gates): the computed-only-what-is-kept path equals the masked dense one,
the executed MACs are what the kept channels cost, and the gated model trains on real data."""

from __future__ import annotations

import pytest
import torch
import torchvision

from deepseek import InvalidArgumentError
from deepseek.pruning import dynamic_channels


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)

    def block(i: int, o: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(i, o, 3, padding=1, bias=False), torch.nn.BatchNorm2d(o), torch.nn.ReLU()]

    return torch.nn.Sequential(*block(1, 16), *block(16, 32), torch.nn.MaxPool2d(2), *block(32, 32),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))


def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_computing_only_the_kept_channels_equals_masking_the_dense_output(name):
    model = _cnn() if name == "cnn" else torchvision.models.resnet18(num_classes=10)
    _randomise_bn(model)
    x = torch.randn(3, 1 if name == "cnn" else 3, 32, 32, generator=torch.Generator().manual_seed(0))
    gated = dynamic_channels(model.double(), keep=0.6, example_inputs=x[:1].double()).eval()
    with torch.no_grad():
        for batch in (x[:1].double(), x.double()):  # batch 1: gathered; batch 3: one sample at a time
            fast = gated.set_per_sample(True)(batch)
            fast_macs = gated.executed_macs
            dense = gated.set_per_sample(False)(batch)
            assert torch.allclose(fast, dense, rtol=0, atol=1e-10 * float(dense.abs().max()))
            assert fast_macs < gated.executed_macs
    if name == "resnet18":  # inside each basic block the second conv reads only the first one's kept channels
        assert sum(g.producer is not None for g in gated.gates) == 8 and len(gated.gates) == 19


def test_executed_macs_are_the_kept_filters_cost():
    model = _cnn()
    x = torch.randn(1, 1, 16, 16)
    gated = dynamic_channels(model, keep=0.5, example_inputs=x).eval()
    with torch.no_grad():
        gated(x)
    second, third = gated.gates  # the first conv (reading the image) stays dense
    assert (second.k, third.k) == (16, 16) and third.producer is second and second.producer is None
    conv = 16 * 16 * 9 * 16 * 16 + 16 * 16 * 9 * 8 * 8  # second: all 16 inputs; third: 16 of 32 inputs, after pooling
    predictors = (16 * 16 * 16 + 16 * 32) + (32 * 8 * 8 + 32 * 32)
    assert gated.executed_macs == conv + predictors
    dense = 32 * 16 * 9 * 16 * 16 + 32 * 32 * 9 * 8 * 8
    assert gated.set_per_sample(False)(x) is not None and gated.executed_macs == dense + predictors


def test_the_gated_model_trains_on_real_digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    gated = dynamic_channels(_cnn(), keep=0.5, example_inputs=x[:1])
    optimizer = torch.optim.Adam(gated.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    train, test = torch.arange(1400), torch.arange(1400, 1797)
    for _ in range(4):
        for rows in train[torch.randperm(1400, generator=generator)].split(64):
            gated.train()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(gated(x[rows]), y[rows]) + 1e-3 * gated.saliency_l1()
            loss.backward()
            optimizer.step()
    assert gated.gates[0].predictor.weight.grad is not None and gated.gates[0].predictor.weight.grad.abs().sum() > 0
    gated.eval()
    with torch.no_grad():
        accuracy = float((gated(x[test]).argmax(1) == y[test]).float().mean())
    assert accuracy > 0.85, accuracy  # half the channels of two of three convs, chosen per image


def test_bad_arguments_are_named():
    x = torch.randn(1, 1, 8, 8)
    for keep in (0, 1.5, True, "0.5"):
        with pytest.raises(InvalidArgumentError, match="keep"):
            dynamic_channels(_cnn(), keep=keep, example_inputs=x)
    with pytest.raises(InvalidArgumentError, match="example_inputs"):
        dynamic_channels(_cnn(), keep=0.5)
    with pytest.raises(InvalidArgumentError, match="Conv2d"):
        dynamic_channels(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)), 0.5, x)
