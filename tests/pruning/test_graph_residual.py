"""Residual adds: every layer writing into the same residual stream loses the same channels."""

import torch
import torchvision
from _pruned import check_pruned


def test_resnet18_residual_adds_move_together(tmp_path):
    torch.manual_seed(0)
    result = check_pruned(torchvision.models.resnet18(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path)
    model = result.model
    assert result.protected == ["fc"]
    assert model.layer1[0].conv2.out_channels == model.layer1[1].conv2.out_channels == model.conv1.out_channels
    assert any("layer1.0.conv2" in line for g in result.groups for line in g) and "coupled groups" in str(result)


def test_resnet50_bottleneck_downsample_joins_its_stage(tmp_path):
    torch.manual_seed(0)
    model = check_pruned(torchvision.models.resnet50(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path).model
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        # the 1x1 projection on the shortcut and every block's last conv write the same stream
        assert stage[0].downsample[0].out_channels == stage[0].conv3.out_channels == stage[-1].conv3.out_channels
