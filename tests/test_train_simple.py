import pytest
import torch

import deepseek
from deepseek import assets
from deepseek.train import accuracy, fit_classifier


def test_fit_classifier_learns_digits_and_is_deterministic():
    train, test = assets.digits().split(0.2, seed=0)

    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        return fit_classifier(model, train, epochs=5, lr=1e-2)

    a, b = run(), run()
    assert accuracy(a, test) > 0.9 and not a.training
    torch.testing.assert_close(a[1].weight, b[1].weight)
    with pytest.raises(deepseek.InvalidArgumentError, match="epochs"):
        fit_classifier(a, train, epochs=0)
