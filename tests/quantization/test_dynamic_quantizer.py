import pytest
import torch

from deepseek import ArtifactError, InvalidArgumentError, assets
from deepseek.quantization import DynamicQuantizer, WeightOnlyLinear, choose_precision


class _MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 128)
        self.fc3 = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _examples():
    return torch.randn(8, 64, generator=torch.Generator().manual_seed(1))


def test_hybrid_assigns_first_layer_4bit_rest_8bit_weight_only():
    q = DynamicQuantizer(_MLP(), activation_threshold=1.0, example_inputs=_examples())
    model = q.quantize(method="hybrid", weight_bits=[4, 8], activation_bits=16)
    assert isinstance(model.fc1, WeightOnlyLinear) and model.fc1.bits == 4
    assert model.fc2.bits == 8 and model.fc3.bits == 8
    assert isinstance(q.model.fc1, torch.nn.Linear)  # the original is untouched
    assert q.layer_plan["fc1"].startswith("int4 weight-only")
    result = q.benchmark(runs=3, warmup=1)
    assert result.quantized_size_mb < result.fp32_size_mb / 2
    assert result.output_sqnr_db > 15  # a broken kernel gives ~0 dB
    assert result.fp32_ms > 0 and result.quantized_ms > 0
    assert "measured" in str(result)


class _Classifier(torch.nn.Module):
    """A head defined beside a nested body: "first layer" is the body's first Linear, not the head."""

    def __init__(self):
        super().__init__()
        self.body = _MLP()
        self.head = torch.nn.Linear(10, 2)  # 2 outputs: the int4 kernel needs multiples of 16

    def forward(self, x):
        return self.head(self.body(x))


def test_first_layer_is_in_definition_order_and_int4_falls_back_where_unsupported():
    q = DynamicQuantizer(_Classifier(), activation_threshold=1.0, example_inputs=_examples())
    model = q.quantize(method="hybrid", weight_bits=4, activation_bits=16)
    assert next(iter(q.layer_plan)) == "body.fc1"
    assert model.body.fc2.bits == 4 and model.head.bits == 8
    with torch.no_grad():
        assert model(_examples()).shape == (8, 2)


def test_hybrid_threshold_decides_which_layers_get_int8_activations():
    q = DynamicQuantizer(_MLP(), example_inputs=_examples())
    sens = q.layer_sensitivity()
    assert set(sens) == {"fc1", "fc2", "fc3"} and max(sens.values()) == pytest.approx(1.0)
    assert all(0 <= v <= 1 for v in sens.values())
    q.activation_threshold = min(sens.values())  # only the least sensitive layer qualifies
    q.quantize(method="hybrid", weight_bits=8, activation_bits=8, compile=False)
    dynamic = [n for n, plan in q.layer_plan.items() if "dynamic activations" in plan]
    assert dynamic == [min(sens, key=sens.get)]


def test_dynamic_quantizes_every_linear_with_int8_activations():
    q = DynamicQuantizer(_MLP(), example_inputs=_examples())
    model = q.quantize(method="dynamic", compile=False)
    assert all("dynamic activations" in p for p in q.layer_plan.values()) and len(q.layer_plan) == 3
    with torch.no_grad():
        ref, out = q.model(_examples()), model(_examples())
    assert (ref - out).abs().max() < 0.05 * ref.abs().max()


def test_loads_state_dict_with_arch(tmp_path):
    import torchvision
    from safetensors.torch import save_file

    save_file(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "m.safetensors")
    q = DynamicQuantizer(tmp_path / "m.safetensors", arch="torchvision:mobilenet_v3_small")
    assert q.example_inputs[0].shape == (1, 3, 224, 224)
    q.quantize(method="hybrid", weight_bits=8, activation_bits=16)
    assert any("weight-only" in p for p in q.layer_plan.values())


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"quant_bits": 3}, "quant_bits"),
    ({"activation_threshold": 0}, "activation_threshold"),
    ({"activation_threshold": 1.5}, "activation_threshold"),
])
def test_bad_constructor_arguments(kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=argument):
        DynamicQuantizer(_MLP(), **kwargs)


def test_bad_quantize_arguments():
    q = DynamicQuantizer(_MLP(), example_inputs=_examples())
    with pytest.raises(InvalidArgumentError, match="method"):
        q.quantize(method="magic")
    with pytest.raises(InvalidArgumentError, match="weight_bits"):
        q.quantize(method="hybrid", weight_bits=[4, 3])
    with pytest.raises(InvalidArgumentError, match="weight_bits"):
        q.quantize(method="dynamic", weight_bits=[4, 8])
    with pytest.raises(InvalidArgumentError, match="calibration"):
        q.quantize(method="static")
    with pytest.raises(InvalidArgumentError, match="quantize"):
        DynamicQuantizer(_MLP()).benchmark()


def test_refuses_pickles_and_onnx(tmp_path):
    torch.save(_MLP(), tmp_path / "whole.pt")
    with pytest.raises(ArtifactError, match="trust_pickle"):
        DynamicQuantizer(tmp_path / "whole.pt")
    (tmp_path / "m.onnx").write_bytes(b"not really")
    with pytest.raises(InvalidArgumentError, match="ONNX"):
        DynamicQuantizer(tmp_path / "m.onnx")


def test_precision_auto_follows_the_hardware():
    amx = choose_precision(features={"amx_int8": True, "amx_bf16": True, "avx512_vnni": True}, machine="x86_64")
    assert amx.int8_lowering == "pt2e-inductor" and amx.float_dtype == "bfloat16"
    vnni = choose_precision(features={"avx512_vnni": True, "avx512_bf16": True}, machine="x86_64")
    assert vnni.int8_lowering == "onnxruntime-u8s8"
    assert choose_precision(features={}, machine="aarch64").int8_lowering == "onnxruntime-s8s8"
    assert choose_precision("cuda").float_dtype == "float16"
    with pytest.raises(InvalidArgumentError, match="device"):
        choose_precision("tpu")


@pytest.mark.slow
@pytest.mark.skipif(not assets.available().get("minilm"), reason=assets.ASSETS["minilm"])
def test_hybrid_on_minilm_folder_keeps_embeddings_close():
    tokenizer = assets.minilm()[1]
    enc = tokenizer(assets.rotten_tomatoes().texts[:4], padding="max_length", max_length=32, truncation=True, return_tensors="pt")
    q = DynamicQuantizer(assets.minilm_path(), example_inputs=(enc["input_ids"], enc["attention_mask"]))
    q.quantize(method="hybrid", weight_bits=[4, 8], activation_bits=8, compile=False)
    plan = q.layer_plan
    assert len(plan) == 6 * 6 + 1 and plan[next(iter(plan))].startswith("int4")
    result = q.benchmark(runs=2, warmup=1)
    assert result.output_sqnr_db > 10


class _OutlierInput(torch.nn.Module):
    """A classifier whose input carries one huge feature it ignores: 8-bit ranges of that input must span it, and
    lose the small features that decide the class, unless its first layer stays in float."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.first, self.middle, self.last = torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 4)
        with torch.no_grad():
            for layer in (self.first, self.middle, self.last):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) / layer.weight.shape[1] ** 0.5)
                layer.bias.zero_()
            self.first.weight[:, 0] = 0.0  # feature 0 (the outlier) never reaches the decision

    def forward(self, x):
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


def _outlier_inputs(n, seed):
    x = torch.randn(n, 16, generator=torch.Generator().manual_seed(seed))
    x[:, 0] = 2000.0 * torch.sign(x[:, 0])
    return x


def test_static_int8_is_held_to_its_floor_and_keeps_layers_in_float_to_meet_it():
    model = _OutlierInput().eval()
    q = DynamicQuantizer(model, example_inputs=_outlier_inputs(4, 0))
    quantized = q.quantize(method="static", calibration=[_outlier_inputs(64, 1)], held_out=_outlier_inputs(256, 2),
                           min_agreement=0.9, compile=False)
    floor = q.floor
    assert floor["held_out"] == 256 and floor["min_agreement"] == 0.9
    # the observers alone cannot keep the small features (the input's 8-bit step is ~16): only the float first layer
    assert [a["float_layers"] for a in floor["attempts"]] == [[], [], ["first", "last"]]
    assert all(a["confident_agreement"] < 0.9 for a in floor["attempts"][:2])
    assert floor["met"] and floor["agreement"] == floor["attempts"][-1]["confident_agreement"] >= 0.9
    assert q.layer_plan["first"] == "float (kept)" and q.layer_plan["middle"] == "int8 static (PT2E)"
    x = _outlier_inputs(64, 3)
    with torch.no_grad():
        assert (quantized(x).argmax(1) == model(x).argmax(1)).float().mean() >= 0.8


def test_static_int8_below_every_floor_warns_and_keeps_the_best():
    model = _OutlierInput().eval()
    head = torch.nn.Linear(32, 4)
    with torch.no_grad():  # confident logits, so that the confident views are many
        head.weight.copy_(8 * model.last.weight)
        head.bias.zero_()
    two_layers = torch.nn.Sequential(model.first, torch.nn.ReLU(), head).eval()
    q = DynamicQuantizer(two_layers, example_inputs=_outlier_inputs(4, 0))
    with pytest.warns(UserWarning, match="below its floor"):
        q.quantize(method="static", calibration=[_outlier_inputs(64, 1)], held_out=_outlier_inputs(256, 2),
                   min_agreement=0.9, compile=False)
    # two layers: no float fallback to try (both would be the first and the last), only the two observers
    assert not q.floor["met"] and len(q.floor["attempts"]) == 2
    assert q.floor["agreement"] == max(a["confident_agreement"] for a in q.floor["attempts"]) < 0.9
    with pytest.raises(InvalidArgumentError, match="held_out"):
        q.quantize(method="dynamic", held_out=_outlier_inputs(8, 2))
    with pytest.raises(InvalidArgumentError, match="min_agreement"):
        q.quantize(method="static", calibration=[_outlier_inputs(8, 1)], held_out=_outlier_inputs(8, 2),
                   min_agreement=1.5)
