"""Shared check for the per-graph-edge-case tests: prune, then the result must be an ordinary smaller module."""

import copy

import onnxruntime as ort
import torch
from safetensors.torch import load_file, save_file

import deepseek
from deepseek.pruning import ChannelPruningResult, prune_channels


def check_pruned(model, x, tmp_path, min_param_drop=0.4, max_mac_ratio=0.5, round_to=8) -> ChannelPruningResult:
    """Prune 50% with ``round_to``; the input stays untouched, output shapes are unchanged, the ONNX export
    agrees with PyTorch in ONNX Runtime and the state dict round-trips through safetensors."""
    ref_shape = model(x).shape
    dense = copy.deepcopy(model)
    result = prune_channels(model, 0.5, x, round_to=round_to)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in dense.parameters())  # input untouched
    model = result.model
    with torch.no_grad():
        out = model(x)
    assert out.shape == ref_shape and torch.isfinite(out).all()
    assert result.param_ratio < 1 - min_param_drop and result.mac_ratio < max_mac_ratio
    # every remaining conv is a multiple of round_to channels (fast kernels), except the protected output layer
    dense_modules = dict(dense.named_modules())
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and name not in result.protected and m.groups == 1:
            assert m.out_channels % round_to == 0 or m.out_channels == dense_modules[name].out_channels, name
    path = deepseek.export_onnx(model, x, tmp_path / "pruned.onnx").path
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), out, atol=1e-3, rtol=1e-3)
    save_file(model.state_dict(), tmp_path / "pruned.safetensors")
    clone = copy.deepcopy(model)
    clone.load_state_dict(load_file(tmp_path / "pruned.safetensors"))
    assert sum(p.numel() for p in clone.parameters()) < sum(p.numel() for p in dense.parameters())
    return result


class ConcatNet(torch.nn.Module):
    """Two branches concatenated, then flatten → Linear: the head's inputs follow both branches."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.b = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(64)
        self.head = torch.nn.Linear(64 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))
        return self.head(torch.nn.functional.adaptive_avg_pool2d(y, 4).flatten(1))
