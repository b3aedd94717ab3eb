"""Structured pruning across torchvision's classification zoo (random weights, 10 classes, small inputs,
ratio 0.25): the pruned model runs, its output shape is unchanged and it has fewer parameters — or the model
is refused in one line naming the layer that cannot be pruned (ShuffleNet's channel shuffle). A representative
subset, one per structure; benchmarks/bench_prune_zoo.py runs all 80 models (maxvit_t among them: 37 s here)."""

import copy

import pytest
import torch
import torchvision

from deepseek import InvalidArgumentError
from deepseek.cli import _run
from deepseek.pruning import prune_channels

slow = pytest.mark.slow


def _build(name, **kwargs):
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs).eval()


def _prune(model, size=64):
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref = model(x)
    result = prune_channels(model, 0.25, x)
    with torch.no_grad():
        out = result.model(x)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert result.params_after < result.params_before and result.macs_after < result.macs_before
    assert result.protected, "the classifier producing the output is kept whole"
    return result


@pytest.mark.parametrize("name, kwargs, size", [
    ("squeezenet1_0", {}, 64),
    ("mobilenet_v3_small", {}, 64),
    ("efficientnet_b0", {}, 64),
    ("regnet_x_400mf", {}, 64),
    ("googlenet", {"aux_logits": False, "init_weights": False}, 64),
    pytest.param("mnasnet0_5", {}, 64, marks=slow),
    pytest.param("regnet_y_400mf", {}, 64, marks=slow),
    pytest.param("resnext50_32x4d", {}, 64, marks=slow),
    pytest.param("inception_v3", {"aux_logits": False, "init_weights": False}, 80, marks=slow),
    pytest.param("convnext_tiny", {}, 64, marks=slow),
    pytest.param("vit_b_16", {"image_size": 32}, 32, marks=slow),
])
def test_zoo_model_prunes(name, kwargs, size):
    _prune(_build(name, **kwargs), size)


@slow
def test_swin_shifted_window_attention_prunes():
    """torchvision's SwinTransformer at swin_t's structure (patch 4, window 7, heads 3-6-12-24, a patch merge per
    stage) but half as wide and 5 blocks instead of 12: the same shifted-window attention, a third of the time."""
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    model = SwinTransformer(patch_size=[4, 4], embed_dim=48, depths=[1, 1, 2, 1], num_heads=[3, 6, 12, 24],
                            window_size=[7, 7], stochastic_depth_prob=0.2, num_classes=10).eval()
    _prune(model)


def test_squeezenet_fire_concatenation_maps_each_branch_to_its_consumer_columns():
    """Fire modules concatenate expand1x1 and expand3x3; the next squeeze conv keeps exactly the input columns
    of the channels each branch kept (the classifier conv reached through pooling and flatten stays whole)."""
    dense = _build("squeezenet1_1")
    with torch.no_grad():  # every channel's bias is its index: what survives says which channels were kept
        for m in dense.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.copy_(torch.arange(m.out_channels, dtype=torch.float32))
    result = _prune(copy.deepcopy(dense))
    model = result.model
    assert result.protected == ["classifier.1"] and model.classifier[1].out_channels == 10

    def kept(conv):
        return [int(b) for b in conv.bias]

    for i in (3, 4, 6, 7, 9, 10, 11):
        j = i + 2 if i in (4, 7) else i + 1  # the next Fire module, after a max-pool or not
        fire, after, old_fire, old_after = model.features[i], model.features[j], dense.features[i], dense.features[j]
        ones, threes = kept(fire.expand1x1), kept(fire.expand3x3)
        assert len(ones) < old_fire.expand1x1.out_channels and len(threes) < old_fire.expand3x3.out_channels
        columns = ones + [old_fire.expand1x1.out_channels + c for c in threes]
        torch.testing.assert_close(after.squeeze.weight, old_after.squeeze.weight[kept(after.squeeze)][:, columns])


def test_shufflenet_channel_shuffle_is_refused_naming_the_layer():
    model = _build("shufflenet_v2_x0_5")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InvalidArgumentError, match=r"^model: .*layer 'stage2\.0' shuffles its 48 channels between 2 groups"):
        prune_channels(model, 0.25, torch.randn(1, 3, 64, 64))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("output", [None, pytest.param("pruned.onnx", marks=slow)])
def test_cli_prunes_squeezenet1_1(tmp_path, capsys, output):
    torch.manual_seed(0)
    weights = tmp_path / "squeezenet1_1.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), weights)
    args = ["prune", str(weights), "--arch", "torchvision:squeezenet1_1", "--inputs", "1x3x64x64", "--ratio", "0.25",
            "--runs", "1"]
    code = _run(args + (["--output", str(tmp_path / output)] if output else []))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "kept whole: classifier.1" in captured.out
    assert output is None or (tmp_path / output).is_file()
