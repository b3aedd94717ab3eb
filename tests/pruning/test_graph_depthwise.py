"""Depthwise and grouped convs keep groups == channels; squeeze-excite gates follow their block."""

import torch
import torchvision
from _pruned import check_pruned


def test_mobilenet_v2_depthwise_convs_keep_groups_equal_channels(tmp_path):
    torch.manual_seed(0)
    model = check_pruned(torchvision.models.mobilenet_v2(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path).model
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


def test_efficientnet_b0_squeeze_excite_gates(tmp_path):
    torch.manual_seed(0)
    model = check_pruned(torchvision.models.efficientnet_b0(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path,
                         min_param_drop=0.5).model
    for m in model.modules():
        if type(m).__name__ == "SqueezeExcitation":  # the gate's expand conv matches the channels it scales
            assert m.fc2.out_channels == m.fc1.in_channels
