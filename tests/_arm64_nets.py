"""A small CNN for the arm64 bundle tests."""

import torch


class SmallNet(torch.nn.Module):
    """Conv/BN/ReLU, a residual add, pooling and a Linear head: the ops a CNN bundle must carry."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU())
        self.block = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        y = self.stem(x)
        y = y + self.block(y)
        return self.head(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))
