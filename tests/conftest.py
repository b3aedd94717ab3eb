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


def _check_printed_table(table, *words):
    """``print(table)`` gives a readable box-drawn table holding ``words`` (not ``<rich.table.Table object ...>``),
    and rich still renders the same object."""
    import io

    from rich.console import Console

    text = str(table)
    assert "object at 0x" not in text and "│" in text, text[:200]
    for word in words:
        assert word in text, (word, text[:500])
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    assert all(word in console.file.getvalue() for word in words)
    return text


@pytest.fixture
def printed_table():
    return _check_printed_table
