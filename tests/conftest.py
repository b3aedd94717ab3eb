import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_cnn():
    """A small real torchvision-style CNN (random weights): fast to export and run."""
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture(scope="session")
def image_input():
    import torch

    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
