import copy

import onnxruntime as ort
import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

import deepseek
from deepseek import InvalidArgumentError
from deepseek.pruning import ChannelPruningConfig, output_layers, prune_channels, slimming_penalty


def _check_pruned(model, x, tmp_path, min_param_drop=0.4, max_mac_ratio=0.5):
    ref_shape = model(x).shape
    dense = copy.deepcopy(model)
    result = prune_channels(model, 0.5, x, round_to=8)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in dense.parameters())  # input untouched
    model = result.model
    with torch.no_grad():
        out = model(x)
    assert out.shape == ref_shape and torch.isfinite(out).all()
    assert result.param_ratio < 1 - min_param_drop and result.mac_ratio < max_mac_ratio
    # every remaining conv is a multiple of 8 channels (fast kernels), except the protected output layer
    dense_modules = dict(dense.named_modules())
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and name not in result.protected and m.groups == 1:
            assert m.out_channels % 8 == 0 or m.out_channels == dense_modules[name].out_channels, name
    # a plain module: exports to ONNX, ONNX Runtime agrees, safetensors round-trips into a copy
    path = deepseek.export_onnx(model, x, tmp_path / "pruned.onnx").path
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), out, atol=1e-3, rtol=1e-3)
    save_file(model.state_dict(), tmp_path / "pruned.safetensors")
    clone = copy.deepcopy(model)
    clone.load_state_dict(load_file(tmp_path / "pruned.safetensors"))
    assert sum(p.numel() for p in clone.parameters()) < sum(p.numel() for p in dense.parameters())
    return result


def test_resnet_residual_adds_move_together(tmp_path):
    torch.manual_seed(0)
    result = _check_pruned(torchvision.models.resnet18(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path)
    model = result.model
    assert result.protected == ["fc"]
    # the residual stream of a stage is one coupled group: every conv writing into it shrank together
    assert model.layer1[0].conv2.out_channels == model.layer1[1].conv2.out_channels == model.conv1.out_channels
    assert any("layer1.0.conv2" in line for g in result.groups for line in g) and "coupled groups" in str(result)


def test_mobilenet_depthwise_convs_keep_groups_equal_channels(tmp_path):
    torch.manual_seed(0)
    model = _check_pruned(torchvision.models.mobilenet_v2(num_classes=10).eval(), torch.randn(1, 3, 64, 64), tmp_path).model
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.groups > 1:
            assert m.groups == m.in_channels == m.out_channels


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


def test_concat_and_flatten_into_linear(tmp_path):
    torch.manual_seed(0)
    model = _check_pruned(ConcatNet().eval(), torch.randn(2, 3, 16, 16), tmp_path, min_param_drop=0.3, max_mac_ratio=0.51).model  # 3-channel input layers keep their inputs
    assert model.bn.num_features == model.a.out_channels + model.b.out_channels
    assert model.head.in_features == model.bn.num_features * 16


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


def test_a_graph_it_cannot_handle_fails_clearly_and_leaves_the_model_intact():
    model = torchvision.models.vit_b_16(num_classes=10).eval()  # torchvision ViT keeps hidden_dim in an attribute
    before = sum(p.numel() for p in model.parameters())
    with pytest.raises(InvalidArgumentError, match="unchanged"):
        prune_channels(model, 0.5, torch.randn(1, 3, 224, 224))
    assert sum(p.numel() for p in model.parameters()) == before


@pytest.mark.parametrize("name", ["efficientnet_b0", "vgg16_bn", "densenet121"])
def test_more_torchvision_architectures(name, tmp_path):
    """Squeeze-excite gates (EfficientNet), a deep plain stack with a big flatten→Linear head (VGG), dense
    concatenation of every earlier feature map (DenseNet)."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10).eval()
    _check_pruned(model, torch.randn(1, 3, 64, 64), tmp_path, min_param_drop=0.5)


def test_hugging_face_bert_heads_and_ffn_shrink_hidden_size_stays(tmp_path):
    from deepseek import assets

    encoder, tokenizer = assets.minilm()  # a real BertModel (all-MiniLM-L6-v2)
    enc = tokenizer(["a fine film", "dull"], padding="max_length", max_length=16, return_tensors="pt")
    x = (enc["input_ids"], enc["attention_mask"])
    with torch.no_grad():
        ref = encoder(*x)
    result = prune_channels(encoder.eval(), 0.5, x)
    model = result.model
    for layer in model.encoder.layer:
        attention = layer.attention.self
        # head width may or may not shrink (Torch-Pruning's group order is not deterministic for q/k/v);
        # either way the attention's size attributes must match its Linear layers
        assert attention.query.out_features in (192, 384) and attention.num_attention_heads == 12
        assert attention.attention_head_size * 12 == attention.query.out_features == attention.all_head_size
        assert layer.intermediate.dense.out_features in (768, 1536)  # same caveat as above
    assert model.encoder.layer[0].output.dense.out_features == 384  # the residual stream keeps its width
    with torch.no_grad():
        out = model(*x)
    assert out.last_hidden_state.shape == ref.last_hidden_state.shape and out.pooler_output.shape == ref.pooler_output.shape
    assert encoder.encoder.layer[0].attention.self.query.out_features == 384  # the original is untouched
    assert result.params_after <= result.params_before
    from deepseek.models import HiddenStates

    path = deepseek.export_onnx(HiddenStates(model).eval(), x, tmp_path / "bert_pruned.onnx",
                                input_names=["input_ids", "attention_mask"]).path  # verified against PyTorch on export
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": x[0].numpy(), "attention_mask": x[1].numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), out.last_hidden_state, atol=1e-3, rtol=1e-3)
