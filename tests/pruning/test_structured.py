
import pytest
import torch
import torchvision
from _pruned import ConcatNet

from deepseek import InvalidArgumentError
from deepseek.pruning import ChannelPruningConfig, output_layers, prune_channels, slimming_penalty


def test_progressive_steps_call_finetune_and_ignore_is_respected():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    seen = []
    result = prune_channels(model, 0.5, torch.randn(1, 3, 64, 64), steps=2, ignore=("conv1",), inplace=True,
                            finetune=lambda m, step: seen.append((step, sum(p.numel() for p in m.parameters()))))
    assert result.model is model
    assert [s for s, _ in seen] == [0, 1] and seen[1][1] < seen[0][1]
    assert model.conv1.out_channels == 64  # ignored: its coupled group stays whole
    assert "conv1" in result.protected or model.conv1.out_channels == 64


def test_taylor_needs_gradients():
    model = ConcatNet().eval()
    x = torch.randn(4, 3, 16, 16)
    with pytest.raises(InvalidArgumentError, match="gradients"):
        prune_channels(model, 0.5, x, importance="taylor")
    result = prune_channels(model, 0.25, x, importance="taylor",
                            gradients=lambda m: torch.nn.functional.cross_entropy(m(x), torch.tensor([0, 1, 2, 3])).backward())
    assert result.params_after < result.params_before


def test_output_layers_are_found():
    model = ConcatNet().eval()
    assert output_layers(model, (torch.randn(1, 3, 16, 16),)) == ["head"]


@pytest.mark.parametrize("kwargs, argument", [
    ({"ratio": 1.0}, "ratio"), ({"ratio": -0.2}, "ratio"), ({"importance": "vibes"}, "importance"),
    ({"steps": 0}, "steps"), ({"round_to": 0}, "round_to"),
])
def test_bad_config(kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=argument):
        ChannelPruningConfig(**kwargs)


def test_bad_inputs():
    with pytest.raises(InvalidArgumentError, match="example_inputs"):
        prune_channels(ConcatNet(), 0.5)
    with pytest.raises(InvalidArgumentError, match="model"):
        prune_channels("resnet", 0.5, torch.randn(1, 3, 8, 8))


def test_slimming_penalty_drives_bn_scales_down_and_bn_scale_importance_removes_them():
    torch.manual_seed(0)
    model = ConcatNet()
    with torch.no_grad():
        model.bn.weight.fill_(1.0)
        model.bn.weight[:4] = 0.001  # channels network slimming has already switched off, 4 per branch
        model.bn.weight[32:36] = 0.001  # (concatenated branches are pruned in proportion)
    penalty = slimming_penalty(model, 1e-2)
    assert penalty.item() == pytest.approx(1e-2 * model.bn.weight.abs().sum().item())
    penalty.backward()
    assert torch.all(model.bn.weight.grad > 0)  # the L1 pull towards zero
    kept = model.bn.weight.detach().clone()
    model = prune_channels(model.eval(), 0.125, torch.randn(1, 3, 16, 16), importance="bn_scale").model
    assert model.bn.num_features == 56 and torch.all(model.bn.weight > 0.5)  # exactly the 8 small-γ channels went
    assert kept.numel() == 64
    with pytest.raises(InvalidArgumentError, match="model"):
        slimming_penalty(torch.nn.Linear(2, 2))




class HardCodedWidth(torch.nn.Module):
    """Reshapes with a channel count written in the code: no dependency graph can update that constant."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.conv(x).reshape(x.shape[0], 16, -1).mean(-1))


def test_a_graph_it_cannot_handle_fails_clearly_and_leaves_the_model_intact():
    model = HardCodedWidth().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InvalidArgumentError, match="unchanged"):
        prune_channels(model, 0.5, torch.randn(1, 3, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
