"""A real trained model for the optimize tests: a small CNN on scikit-learn's digits (about 97 % held out)."""

import pytest
import torch

from deepseek import assets


@pytest.fixture(scope="module")
def digits_cnn():
    torch.manual_seed(0)
    train, _ = assets.digits().split(0.2, seed=0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1),
                                torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(train.x), train.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
