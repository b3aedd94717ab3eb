"""Concatenation: a consumer of torch.cat follows every branch (DenseNet concatenates all earlier maps)."""

import torch
import torchvision
from _pruned import ConcatNet, check_pruned


def test_two_branches_concatenated(tmp_path):
    torch.manual_seed(0)
    model = check_pruned(ConcatNet().eval(), torch.randn(2, 3, 16, 16), tmp_path, min_param_drop=0.3, max_mac_ratio=0.51).model
    assert model.bn.num_features == model.a.out_channels + model.b.out_channels


def test_densenet_dense_concatenation(tmp_path):
    torch.manual_seed(0)
    # torchvision's DenseNet with densenet121's structure at a fraction of its size (two blocks of four layers):
    # the same dense concatenations and transitions, pruned and exported in seconds instead of a minute
    net = torchvision.models.DenseNet(growth_rate=16, block_config=(4, 4), num_init_features=32, num_classes=10)
    model = check_pruned(net.eval(), torch.randn(1, 3, 64, 64), tmp_path, min_param_drop=0.5).model
    block = model.features.denseblock1
    # each layer's input BatchNorm covers the stem plus every earlier layer's (pruned) growth
    grown = model.features.conv0.out_channels + sum(block[f"denselayer{i}"].conv2.out_channels for i in range(1, 4))
    assert block.denselayer4.norm1.num_features == grown
