"""Flatten → Linear: a head reading C×H×W features loses H×W inputs per removed channel."""

import torch
import torchvision
from _pruned import ConcatNet, check_pruned


def test_flatten_into_linear(tmp_path):
    torch.manual_seed(0)
    model = check_pruned(ConcatNet().eval(), torch.randn(2, 3, 16, 16), tmp_path, min_param_drop=0.3, max_mac_ratio=0.51).model
    assert model.head.in_features == model.bn.num_features * 16


def test_vgg16_bn_classifier_follows_the_last_conv(tmp_path):
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16_bn(num_classes=10).eval()
    # VGG's classifier at width 256 instead of 4,096: the same flatten after the 7x7 pool, a 20th of the weights
    vgg.classifier[0], vgg.classifier[3], vgg.classifier[6] = (torch.nn.Linear(512 * 7 * 7, 256),
                                                               torch.nn.Linear(256, 256), torch.nn.Linear(256, 10))
    model = check_pruned(vgg, torch.randn(1, 3, 64, 64), tmp_path, min_param_drop=0.5).model
    last_conv = [m for m in model.features if isinstance(m, torch.nn.Conv2d)][-1]
    assert model.classifier[0].in_features == last_conv.out_channels * 7 * 7  # after the 7×7 adaptive pool
