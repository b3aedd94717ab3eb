import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.quantization import PT2EModule, quantize_pt2e, sqnr_db


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


def _data(n=16, seed=0):
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _quantize_ops(module: PT2EModule) -> int:
    return sum(1 for n in module.graph_module.graph.nodes if "quantize_per" in str(n.target))


@pytest.mark.parametrize("observer", ["minmax", "percentile", "mse", "histogram", "moving_average"])
def test_reference_graph_is_int8_and_close_to_fp32(observer):
    model = _Net().eval()
    calib = [_data(8, s) for s in range(3)]
    q = quantize_pt2e(model, _data(1), calib, observer=observer, compile=False)
    assert isinstance(q, PT2EModule) and _quantize_ops(q) >= 3  # input, conv output, linear input at least
    x = _data(4, 9)
    with torch.no_grad():
        assert sqnr_db(model(x), q(x)) > 20


def test_labeled_batches_and_dynamic_batch_size():
    model = _Net().eval()
    loader = [(_data(8, s), torch.randint(0, 10, (8,))) for s in range(2)]  # (inputs, labels) like a DataLoader
    q = quantize_pt2e(model, _data(1), loader, compile=False)
    with torch.no_grad():
        assert q(_data(5)).shape == (5, 10)  # exported with a symbolic batch dimension


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="calibration"):
        quantize_pt2e(_Net(), _data(1))
    with pytest.raises(InvalidArgumentError, match="observer"):
        quantize_pt2e(_Net(), _data(1), [_data(2)], observer="magic")
    with pytest.raises(InvalidArgumentError, match="model"):
        quantize_pt2e("net.pt", _data(1), [_data(2)])
    with pytest.raises(InvalidArgumentError, match="calibration"):
        quantize_pt2e(_Net(), _data(4), [_data(2)], dynamic_batch=False)  # smaller than the exported batch


@pytest.mark.slow
def test_compiled_int8_matches_reference_graph():
    model = _Net().eval()
    q = quantize_pt2e(model, _data(1), [_data(8, s) for s in range(2)], observer="mse")
    x = _data(2, 5)
    with torch.no_grad():
        compiled, reference = q(x), q.graph_module(x)
    assert q.compile_s is not None and q.compile_s > 0
    assert sqnr_db(reference, compiled) > 25  # Inductor's integer kernels compute what the graph describes
