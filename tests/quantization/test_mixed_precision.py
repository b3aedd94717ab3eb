import copy

import pytest
import torch

from deepseek.quantization import (
    MixedPrecisionConfig,
    plan_mixed_precision,
    quantize_pt2e,
    quantize_weights,
    sqnr_db,
    weight_only_layers,
)
from deepseek.quantization.mixed_precision import _promotion_order


def outlier_mlp() -> torch.nn.Sequential:
    """Layer "2" gets an input channel stuck at ~1000 that it ignores: per-tensor INT8 ranges for its input
    then wipe out every other channel, so only that layer needs to stay in float."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))
    with torch.no_grad():
        model[0].bias[3] = 1000.0
        model[0].weight[3].zero_()
        model[2].weight[:, 3] = 0.0
    return model.eval()


def test_static_plan_keeps_only_the_layer_int8_breaks(printed_table) -> None:
    model = outlier_mlp()
    x = torch.randn(256, 16)
    plan = plan_mixed_precision(model, x, formats=("int8", "fp32"), min_sqnr_db=30.0)
    assert plan.met and plan.scores["sqnr_db"] >= 30.0
    assert plan.float_layers == ["2"]
    assert plan.formats == {"0": "int8", "2": "fp32", "4": "int8"}
    assert max(plan.sensitivity, key=lambda n: plan.sensitivity[n]["int8"]) == "2"
    assert plan.steps[0]["promoted"] == 0 and not plan.steps[0]["met"]  # all-INT8 missed the budget
    assert plan.weight_bytes < plan.fp32_weight_bytes
    printed_table(plan.table(), "int8", "fp32")
    # the plan lowers through PT2E: the kept layer has no quantized weight in the graph
    full = quantize_pt2e(model, x[:2], [x[:128]], observer="minmax", compile=False)
    mixed = quantize_pt2e(model, x[:2], [x[:128]], observer="minmax", compile=False, exclude=plan.float_layers)

    def quantized_weights(q):
        return sum(1 for n in q.graph_module.graph.nodes if "dequantize_per_channel" in str(n.target))

    assert quantized_weights(full) == 3 and quantized_weights(mixed) == 2
    with torch.no_grad():
        ref = model(x)
        assert sqnr_db(ref, mixed(x)) > sqnr_db(ref, full(x)) + 10


def test_unreachable_budget_is_reported_not_met() -> None:
    model = outlier_mlp()
    plan = plan_mixed_precision(model, torch.randn(64, 16), formats=("int8", "bf16"), min_sqnr_db=200.0)
    assert not plan.met
    assert set(plan.formats.values()) == {"bf16"}


def test_weight_only_plan_runs_on_the_real_kernels(tmp_path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 256), torch.nn.GELU(), torch.nn.Linear(256, 256), torch.nn.GELU(),
                                torch.nn.Linear(256, 64)).eval()
    with torch.no_grad():
        model[2].weight[:, :4] *= 40  # outlier input columns: int4 groups there lose their small weights
    x = torch.randn(4, 32, 128)
    plan = plan_mixed_precision(model, x, scheme="weight_only", formats=("int4", "int8", "bf16"), group_size=32,
                                max_kl=1e-4)
    assert plan.met and plan.scores["kl"] <= 1e-4
    assert plan.formats["2"] != "int4"
    config = plan.weight_only_config()
    real = quantize_weights(copy.deepcopy(model), config)
    layers = weight_only_layers(real)
    for name, fmt in plan.formats.items():
        if fmt == "bf16":
            assert name not in layers
        else:
            assert layers[name].bits == int(fmt[3:])
    with torch.no_grad():
        got = real(x)
    assert sqnr_db(model(x), got) == pytest.approx(plan.scores["sqnr_db"], abs=3.0)
    assert plan.save_json(tmp_path / "plan.json").read_text().count('"int') >= 1


def test_promotions_keep_width_order() -> None:
    sens = {"a": {"int4": 1.0, "int8": 0.9}, "b": {"int4": 0.95, "int8": 0.01}}
    moves = _promotion_order(sens, ("int4", "int8", "bf16"))
    assert moves == [("a", "int8"), ("b", "int8"), ("a", "bf16"), ("b", "bf16")]


def test_auto_formats_follow_the_hardware() -> None:
    cfg = MixedPrecisionConfig()
    assert cfg.formats[0] == "int8" and cfg.formats[-1] in ("bf16", "fp32")
    assert cfg.min_sqnr_db == 20.0
    assert MixedPrecisionConfig(scheme="weight_only", formats="auto").formats[:2] == ("int4", "int8")
    assert MixedPrecisionConfig(formats="auto", device="cuda").formats == ("int8", "fp16")


@pytest.mark.parametrize("kwargs, argument", [
    ({"scheme": "fancy"}, "scheme"),
    ({"formats": ("int4", "fp32")}, "formats"),  # no static int4 lowering
    ({"formats": ("int8",)}, "formats"),  # nowhere to keep sensitive layers
    ({"max_kl": 0.0}, "max_kl"),
    ({"min_agreement": 1.5}, "min_agreement"),
    ({"observer": "magic"}, "observer"),
    ({"scheme": "weight_only", "group_size": 48}, "group_size"),
])
def test_bad_config_names_the_argument(kwargs, argument) -> None:
    with pytest.raises(ValueError, match=argument):
        MixedPrecisionConfig(**kwargs)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="calibration"):
        plan_mixed_precision(outlier_mlp(), [])
    with pytest.raises(ValueError, match="model"):
        plan_mixed_precision(torch.nn.ReLU(), torch.randn(2, 3))
    with pytest.raises(ValueError, match="exclude"):
        quantize_pt2e(outlier_mlp(), torch.randn(2, 16), [torch.randn(8, 16)], exclude=["nope"])
