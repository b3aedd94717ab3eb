"""``quantize(model, config)``: one verb, the config's type choosing the scheme; each scheme's own function is the
same build (same file bytes, same outputs), and what a scheme does not read is refused, not ignored."""

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import deepseek
from deepseek import InvalidArgumentError
from deepseek.quantization import (
    HANDLERS,
    DynamicINT8Config,
    LinearINT8Config,
    MixedPrecisionConfig,
    MixedPrecisionPlan,
    OpenVINOINT8Config,
    PT2EConfig,
    PT2EModule,
    QATConfig,
    StaticINT8Config,
    StaticQuantResult,
    WeightOnlyConfig,
    WeightOnlyLinear,
    quantize,
    quantize_dynamic_onnx,
    quantize_static_onnx,
)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = torch.nn.Linear(8 * 8 * 8, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(self.fc1(self.conv(x).relu().flatten(1)).relu())


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return Net().eval()


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(8, 3, 8, 8, generator=g) for _ in range(4)]


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


def test_every_scheme_has_a_handler():
    assert set(HANDLERS) == {StaticINT8Config, OpenVINOINT8Config, DynamicINT8Config, PT2EConfig, LinearINT8Config,
                             WeightOnlyConfig, QATConfig, MixedPrecisionConfig}


def test_static_int8_through_the_verb_is_the_same_build_as_its_function(net, batches, tmp_path):
    config = StaticINT8Config(method="percentile", int8_format="u8s8")
    by_verb = quantize(net, config, calibration=torch.cat(batches), output=tmp_path / "verb.onnx")
    by_function = quantize_static_onnx(net, torch.cat(batches), tmp_path / "fn.onnx", method="percentile",
                                       int8_format="u8s8")
    assert isinstance(by_verb, StaticQuantResult) and by_verb.int8_format == "u8s8"
    assert "QuantizeLinear" in [n.op_type for n in onnx.load(str(by_verb.path)).graph.node]
    np.testing.assert_array_equal(_run(by_verb.path, batches[0]), _run(by_function.path, batches[0]))


def test_dynamic_onnx_through_the_verb(net, batches, tmp_path):
    fp32 = deepseek.export_onnx(net, batches[0][:1], tmp_path / "fp32.onnx").path
    out = quantize(str(fp32), DynamicINT8Config(op_types=("MatMul", "Gemm")), output=tmp_path / "dq.onnx")
    same = quantize_dynamic_onnx(fp32, tmp_path / "dq2.onnx", op_types=["MatMul", "Gemm"])
    assert out.read_bytes() == same.read_bytes()
    assert any(i.data_type == onnx.TensorProto.INT8 for i in onnx.load(str(out)).graph.initializer)


def test_pt2e_through_the_verb(net, batches):
    q = quantize(net, PT2EConfig(observer="minmax", compile=False), example_inputs=batches[0], calibration=batches)
    assert isinstance(q, PT2EModule)
    with torch.no_grad():
        ref, got = net(batches[0]), q(batches[0])
    assert torch.equal(got.argmax(1), ref.argmax(1)) or (got - ref).abs().max() < 0.1 * ref.abs().max()


def test_linear_int8_dynamic_returns_a_quantized_copy(net, batches):
    q = quantize(net, LinearINT8Config(method="hybrid", weight_bits=8, activation_bits=16, compile=False))
    assert all(isinstance(m, WeightOnlyLinear) for m in (q.fc1, q.fc2))
    assert isinstance(net.fc1, torch.nn.Linear)  # the original is untouched
    with torch.no_grad():
        assert torch.allclose(q(batches[0]).float(), net(batches[0]), atol=0.05)


def test_weight_only_qat_and_mixed_precision_through_the_verb(net, batches):
    plan = quantize(net, MixedPrecisionConfig(), calibration=batches)
    assert isinstance(plan, MixedPrecisionPlan) and set(plan.formats) == {"conv", "fc1", "fc2"}
    prepared = quantize(net, QATConfig())
    assert hasattr(prepared.fc1, "weight_fq")
    converted = quantize(prepared, QATConfig(step="convert"), calibration=batches)
    assert converted is net and all(not fq.observe for _, fq in _fake_quantizers(net))
    other = Net().eval()
    assert quantize(other, WeightOnlyConfig(bits=8)) is other and isinstance(other.fc1, WeightOnlyLinear)


def _fake_quantizers(model):
    from deepseek.quantization.qat import fake_quantizers

    return fake_quantizers(model)


@pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="needs OpenVINO + NNCF (pip install .[openvino])")
def test_openvino_through_the_verb(net, batches, tmp_path):
    result = quantize(net, OpenVINOINT8Config(), calibration=torch.cat(batches), output=tmp_path / "m.xml")
    assert result.path.is_file() and result.path.with_suffix(".bin").is_file()


def test_what_a_scheme_needs_or_does_not_read_is_named(net, batches, tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"^config: .*StaticINT8Config"):
        quantize(net, {"method": "minmax"})
    with pytest.raises(InvalidArgumentError, match=r"^calibration: .*StaticINT8Config needs it"):
        quantize(net, StaticINT8Config(), output=tmp_path / "q.onnx")
    with pytest.raises(InvalidArgumentError, match=r"^output: .*None for WeightOnlyConfig"):
        quantize(net, WeightOnlyConfig(), output=tmp_path / "q.onnx")
    with pytest.raises(InvalidArgumentError, match=r"^example_inputs: .*PT2EConfig needs it"):
        quantize(net, PT2EConfig(), calibration=batches)
    assert not (tmp_path / "q.onnx").exists()


def test_configs_validate_their_fields():
    with pytest.raises(InvalidArgumentError, match=r"^method: "):
        StaticINT8Config(method="kl")
    with pytest.raises(InvalidArgumentError, match=r"^int8_format: "):
        StaticINT8Config(int8_format="s4s4")
    with pytest.raises(InvalidArgumentError, match=r"^observer: "):
        PT2EConfig(observer="nope")
    with pytest.raises(InvalidArgumentError, match=r"^preset: "):
        OpenVINOINT8Config(preset="fast")
    with pytest.raises(InvalidArgumentError, match=r"^op_types: "):
        DynamicINT8Config(op_types=())
    with pytest.raises(InvalidArgumentError, match=r"^weight_bits: "):
        LinearINT8Config(weight_bits=3)
    with pytest.raises(InvalidArgumentError, match=r"^step: "):
        QATConfig(step="train")
    assert StaticINT8Config.from_json(StaticINT8Config(exclude=["fc"]).to_json()) == StaticINT8Config(exclude=("fc",))


def test_a_scheme_function_names_an_unknown_option(net, batches, tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"^calibrate_method: .*a field of StaticINT8Config"):
        quantize_static_onnx(net, batches[0], tmp_path / "q.onnx", calibrate_method="minmax")
    with pytest.raises(InvalidArgumentError, match=r"^kwargs: "):
        quantize_static_onnx(net, batches[0], tmp_path / "q.onnx", StaticINT8Config(), method="minmax")


def test_histogram_calibration_takes_a_row_count_that_is_not_a_multiple_of_16(net, tmp_path):
    """ORT's percentile and entropy calibrators stack every batch's activations: 24 rows split 16 + 8 used to fail."""
    x = torch.rand(24, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    for method in ("percentile", "entropy"):
        result = quantize(net, StaticINT8Config(method=method), calibration=x, output=tmp_path / f"{method}.onnx")
        assert result.calibration_samples == 24
