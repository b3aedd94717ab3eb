import copy

import pytest
import torch

from deepseek import InvalidArgumentError, assets
from deepseek.quantization import WeightOnlyConfig, WeightOnlyLinear, quantize_weights, weight_only_layers
from deepseek.quantization.weight_only import quantize_weight


def _mlp(in_features=96, hidden=64, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(in_features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 32)).eval()


@pytest.mark.parametrize(("bits", "group", "in_features"), [(4, 32, 96), (4, 128, 100), (8, None, 96), (8, 64, 100)])
def test_kernel_matches_dequantized_weight(bits, group, in_features):
    linear = torch.nn.Linear(in_features, 48).eval()
    layer = WeightOnlyLinear.from_linear(linear, bits, group)
    x = torch.randn(2, 5, in_features)
    reference = torch.nn.functional.linear(x, layer.dequantized_weight(), linear.bias)
    out = layer(x)
    assert out.shape == (2, 5, 48) and out.dtype == torch.float32
    # the kernels compute in bfloat16: agree to bf16 precision, not bit for bit
    assert torch.allclose(out, reference, atol=0.03 * reference.abs().max().item())
    # and the dequantized weight is close to the original (int4 coarser than int8)
    error = (layer.dequantized_weight() - linear.weight).abs().max() / linear.weight.abs().max()
    assert error < (0.1 if bits == 4 else 0.01)


def test_int4_reproduces_weights_already_on_a_4bit_grid():
    torch.manual_seed(1)
    levels = torch.randint(0, 16, (16, 64)).float()
    levels[:, ::32], levels[:, 31::32] = 0, 15  # every group spans its whole grid (as GGUF Q4_1 blocks do)
    step = torch.rand(16, 2, 1) * 0.1 + 0.01
    low = torch.randn(16, 2, 1)
    w = (levels.view(16, 2, 32) * step + low).view(16, 64)
    q, _, _ = quantize_weight(w, 4, 32)
    assert q.dtype == torch.uint8 and int(q.max()) <= 15
    linear = torch.nn.Linear(64, 16, bias=False)
    linear.weight.data.copy_(w)
    layer = WeightOnlyLinear.from_linear(linear, 4, 32)
    assert torch.allclose(layer.dequantized_weight(), w, atol=1e-5)


def test_int8_symmetric_grid():
    w = torch.randn(8, 64)
    q, scales, zeros = quantize_weight(w, 8, None)
    assert zeros is None and q.dtype == torch.int8 and scales.shape == (8, 1)
    assert q.abs().max() == 127
    assert torch.allclose(q.float() * scales, w, atol=scales.max().item() / 2 + 1e-6)


def test_quantize_weights_in_place_with_overrides_and_skip():
    model = _mlp()
    reference = model(torch.randn(3, 96))
    out = quantize_weights(model, WeightOnlyConfig(bits=4, group_size=32, layer_bits={"2": 8}))
    assert out is model
    layers = weight_only_layers(model)
    assert layers["0"].bits == 4 and layers["0"].group_size == 32
    assert layers["2"].bits == 8 and layers["2"].group_size is None  # an 8-bit override is per channel
    assert model(torch.randn(3, 96)).shape == reference.shape

    skipped = quantize_weights(_mlp(), bits=8, group_size=None, skip=("re:2",))
    assert set(weight_only_layers(skipped)) == {"0"}
    assert isinstance(skipped[2], torch.nn.Linear)


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import load_file, save_file

    config = WeightOnlyConfig(bits=4, group_size=32, layer_bits={"2": 8})
    model = quantize_weights(_mlp(seed=0), config)
    x = torch.randn(4, 96)
    expected = model(x)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    fresh = quantize_weights(_mlp(seed=7), config)  # different weights before loading
    assert not torch.allclose(fresh(x), expected)
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert torch.equal(fresh(x), expected)  # kernel weights are rebuilt from the loaded integers


def test_dtype_and_device_moves_keep_results():
    layer = WeightOnlyLinear.from_linear(torch.nn.Linear(64, 32), 4, 32)
    x = torch.randn(2, 64)
    before = layer(x)
    layer.to(torch.device("cpu"))
    assert torch.equal(layer(x), before)
    assert layer(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"bits": 3}, "bits"),
    ({"bits": 4, "group_size": None}, "group_size"),
    ({"group_size": 48}, "group_size"),
    ({"compute_dtype": "int8"}, "compute_dtype"),
    ({"layer_bits": {"lm_head": 2}}, "layer_bits"),
    ({"min_features": 0}, "min_features"),
])
def test_bad_config_is_refused(kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=argument):
        WeightOnlyConfig(**kwargs)


def test_model_without_linear_layers_is_refused():
    with pytest.raises(InvalidArgumentError, match=r"nn\.Linear"):
        quantize_weights(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    with pytest.raises(InvalidArgumentError, match="model"):
        quantize_weights("model.pt")


def test_config_json_round_trip():
    config = WeightOnlyConfig(bits=4, group_size=64, layer_bits={"lm_head": 8}, skip=("re:.*gate.*",))
    assert WeightOnlyConfig.from_json(config.to_json()) == config


@pytest.mark.slow
@pytest.mark.skipif(not assets.available().get("smollm2"), reason=assets.ASSETS["smollm2"])
def test_smollm2_int4_keeps_perplexity_on_hamlet():
    from deepseek.evaluation.lm import perplexity

    model, tokenizer = assets.smollm2()
    text = assets.hamlet()
    base = perplexity(model, tokenizer, text, window=256, max_windows=2)
    quantized = quantize_weights(copy.deepcopy(model), bits=4, group_size=32, layer_bits={"lm_head": 8})
    assert len(weight_only_layers(quantized)) == 30 * 7 + 1
    q = perplexity(quantized, tokenizer, text, window=256, max_windows=2)
    assert base.tokens == q.tokens == 2 * 255
    assert abs(q.value - base.value) / base.value < 0.02
    # a broken kernel (e.g. wrong nibble order) would send perplexity into the thousands
    assert q.value < 100


def test_int4_needs_output_channels_in_blocks_of_16():
    head = torch.nn.Linear(64, 2)
    with pytest.raises(InvalidArgumentError, match="bits"):
        WeightOnlyLinear.from_linear(head, 4, 32)
    model = quantize_weights(torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 2)), bits=4, group_size=32)
    assert model[0].bits == 4 and model[1].bits == 8
    x = torch.randn(3, 64)
    assert model(x).shape == (3, 2)


@pytest.mark.parametrize("in_features", [10, 24, 40])
def test_int8_per_channel_pads_k_to_16(in_features):
    linear = torch.nn.Linear(in_features, 3)
    layer = WeightOnlyLinear.from_linear(linear, 8, None)  # the raw kernel segfaults for K % 16 != 0
    x = torch.randn(5, in_features)
    with torch.no_grad():
        assert layer(x).shape == (5, 3)
        torch.testing.assert_close(layer(x), linear(x), atol=0.05, rtol=0.05)
