"""The INT8 layout follows the CPU class, and the int16 saturation it avoids is the one ONNX Runtime really has here.

The per-class choice is pinned with CPU-feature fixtures for every class; the saturation model is checked
against ONNX Runtime itself on whatever CPU the suite runs (VNNI/AMX/arm64 add exactly, AVX2 saturates).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from deepseek import DeepSeekError
from deepseek._core.machine import cpu_features
from deepseek.quantization import choose_precision, quantize_static_onnx
from deepseek.quantization.onnx_overflow import measure_overflow
from deepseek.quantization.precision import resolve_int8_format

ort = pytest.importorskip("onnxruntime")

NONE = dict.fromkeys(("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16"), False)
CLASSES = [  # (features, machine, int8 format, lowering, words in the CPU class)
    ({**NONE, "avx2": True}, "x86_64", "u8s8-overflow-fix", "onnxruntime-u8s8", "AVX2 without VNNI"),
    ({**NONE, "avx2": True, "avx512f": True}, "x86_64", "u8s8-overflow-fix", "onnxruntime-u8s8",
     "AVX-512 without VNNI"),
    ({**NONE, "avx2": True, "avx512f": True, "avx512_vnni": True, "avx512_bf16": True}, "x86_64", "u8s8",
     "onnxruntime-u8s8", "AVX-512 VNNI"),
    ({**NONE, "avx2": True, "avx_vnni": True}, "x86_64", "u8s8", "onnxruntime-u8s8", "AVX-VNNI"),
    ({**NONE, "avx2": True, "avx512f": True, "avx512_vnni": True, "amx_int8": True, "amx_bf16": True}, "x86_64",
     "u8s8", "pt2e-inductor", "AMX"),
    ({"neon": True, "dotprod": False, "i8mm": False}, "aarch64", "s8s8", "onnxruntime-s8s8", "NEON"),
    ({"neon": True, "dotprod": True, "i8mm": False}, "aarch64", "s8s8", "onnxruntime-s8s8", "SDOT"),
    ({"neon": True, "dotprod": True, "i8mm": True}, "aarch64", "s8s8", "onnxruntime-s8s8", "SMMLA"),
]


@pytest.mark.parametrize(("features", "machine", "fmt", "lowering", "words"), CLASSES)
def test_each_cpu_class_gets_its_int8_layout_and_says_why(features, machine, fmt, lowering, words):
    plan = choose_precision("cpu", features, machine)
    assert (plan.int8_format, plan.int8_lowering) == (fmt, lowering)
    assert words in plan.isa_class and plan.isa_class in plan.reason
    assert resolve_int8_format("auto", features, machine).name == fmt


def test_an_unknown_int8_format_is_refused_by_name():
    with pytest.raises(DeepSeekError, match=r"int8_format.*u8u8"):
        resolve_int8_format("u4s4")
    with pytest.raises(DeepSeekError, match="int8_format"):
        quantize_static_onnx(torch.nn.Linear(4, 2), torch.rand(8, 4), "/nonexistent/x.onnx", int8_format="int8")


def _saturating_linear() -> tuple[torch.nn.Module, torch.Tensor]:
    """Inputs spanning uint8 and weights near each channel's maximum: neighbouring products sum past int16."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32)).eval()
    with torch.no_grad():
        w = model[0].weight
        w.copy_(w.sign() * (0.6 + 0.4 * torch.rand_like(w)))
    return model, torch.rand(96, 64)


def _emulate(path, x: np.ndarray) -> dict[str, np.ndarray]:
    """The QDQ Linear's outputs computed in integers by NumPy: exact, and with VPMADDUBSW's saturating pair sums."""
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    s_x, z_x = float(inits["input_scale"]), int(inits["input_zero_point"])
    w = inits["0.weight_quantized"].astype(np.int64)  # (out, in), int8 codes
    s_w = inits["0.weight_scale"].astype(np.float64)
    bias = inits["0.bias_quantized"].astype(np.float64) * inits["0.bias_quantized_scale"]
    a = np.clip(np.round(x / s_x) + z_x, 0, 255).astype(np.int64)
    pairs = (a[:, None, :] * w[None]).reshape(a.shape[0], w.shape[0], -1, 2).sum(-1)
    out = {}
    for name, sums in (("exact", pairs.sum(-1)), ("saturated", np.clip(pairs, -32768, 32767).sum(-1))):
        out[name] = (sums - z_x * w.sum(1)[None]) * s_x * s_w[None] + bias[None]
    # the model's output stays float (no Q/DQ pair in front of it): ORT's result is exact up to float rounding
    out["step"] = float(inits["output_scale"]) if "output_scale" in inits else 1e-4 * float(np.abs(out["exact"]).max())
    return out


def _ort(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _adds_exactly() -> bool:
    f = cpu_features()
    return bool(f.get("avx512_vnni") or f.get("avx_vnni") or f.get("amx_int8") or "neon" in f)


def test_onnx_runtime_saturates_exactly_where_the_model_of_its_kernels_says(tmp_path):
    model, x = _saturating_linear()
    path = tmp_path / "u8s8.onnx"
    quantize_static_onnx(model, x, path, int8_format="u8s8")
    got, emulated = _ort(path, x.numpy()), _emulate(path, x.numpy())
    expected, other = ("exact", "saturated") if _adds_exactly() else ("saturated", "exact")
    step = emulated["step"]
    # within float rounding of the right emulation, far from the other
    assert np.abs(got - emulated[expected]).max() <= 1.01 * step
    assert np.abs(emulated["exact"] - emulated["saturated"]).max() > 10 * step  # the data does saturate
    assert np.abs(got - emulated[other]).max() > 5 * step

    fp32 = tmp_path / "fp32.onnx"
    from deepseek.runtime.onnx_export import export_onnx

    export_onnx(model, x[:1], fp32, input_names=["input"])
    (layer,) = measure_overflow(onnx.load(str(path)), fp32, [{"input": x.numpy()}], rows=10_000)
    integer = {k: (v - _emulate(path, x.numpy())["exact"]) for k, v in emulated.items() if k != "step"}
    reference = model(x).detach().numpy() - model[0].bias.detach().numpy()
    want = np.sqrt((integer["saturated"] ** 2).mean()) / np.sqrt((reference ** 2).mean())
    assert layer.saturation_error == pytest.approx(want, rel=0.02)
    assert 0 < layer.saturated_pairs < 1 and layer.int8_error < layer.int7_error < layer.saturation_error
    assert layer.needs_fix


def test_the_overflow_fix_gives_7_bit_weights_only_where_they_lose_less(tmp_path):
    model, x = _saturating_linear()
    path = tmp_path / "fixed.onnx"
    result = quantize_static_onnx(model, x, path, int8_format="u8s8-overflow-fix")
    assert result.int8_format == "u8s8-overflow-fix" and [r["fixed"] for r in result.overflow] == [True]
    codes = numpy_helper.to_array(next(t for t in onnx.load(str(path)).graph.initializer
                                       if t.name == "0.weight_quantized"))
    assert np.abs(codes.astype(int)).max() <= 64  # 2 x 255 x 64 < 32767: nothing can saturate now
    emulated = _emulate(path, x.numpy())
    assert np.array_equal(emulated["exact"], emulated["saturated"])
    # on every CPU class ORT now computes the exact integer result, and it is close to FP32
    got = _ort(path, x.numpy())
    assert np.abs(got - emulated["exact"]).max() <= 1.01 * emulated["step"]
    plain = tmp_path / "plain.onnx"
    quantize_static_onnx(model, x, plain, int8_format="u8s8")
    fp32_out = model(x).detach().numpy()
    err_fixed = np.sqrt(((got - fp32_out) ** 2).mean())
    err_worst = np.sqrt(((_emulate(plain, x.numpy())["saturated"] - fp32_out) ** 2).mean())
    assert err_fixed < err_worst / 3

    # a layer that cannot saturate keeps its 8-bit weights: with every other input's weight zero, a pair holds
    # one product, at most 255 x 127 < 32767
    with torch.no_grad():
        model[0].weight[:, 1::2] = 0
    calm = tmp_path / "calm.onnx"
    result = quantize_static_onnx(model, x, calm, int8_format="u8s8-overflow-fix")
    assert result.overflow == []
    calm_emulated = _emulate(calm, x.numpy())
    assert np.array_equal(calm_emulated["exact"], calm_emulated["saturated"])
    assert np.abs(_ort(calm, x.numpy()) - calm_emulated["exact"]).max() <= 1.01 * calm_emulated["step"]


def test_seven_bits_only_where_saturation_costs_more_than_the_lost_bit():
    from deepseek.quantization.onnx_overflow import LayerOverflow

    assert not LayerOverflow("mild", 1e-4, 0.001, 0.004, 0.0087, False).needs_fix
    assert LayerOverflow("heavy", 2e-3, 0.03, 0.004, 0.0087, False).needs_fix


def _small_classifier() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(16, 10)).eval()


def test_a_floor_met_at_once_builds_one_layout_and_says_so(tmp_path):
    model, x = _small_classifier(), torch.rand(96, 3, 12, 12)
    result = quantize_static_onnx(model, x[:64], tmp_path / "m.onnx", held_out=x[64:], min_agreement=0.01)
    assert [a["int8_format"] for a in result.attempts] == [resolve_int8_format().name]
    assert not result.below_floor and result.min_agreement == 0.01 and result.held_out["views"] == 32
    assert "meets its floor of 1%" in result.summary() and (tmp_path / "m.onnx").exists()
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    assert producer[graph.output[0].name] == "Gemm"  # the scores leave the model in float, not on an 8-bit grid


def test_below_the_floor_the_safer_layouts_are_tried_and_the_best_written_with_the_verdict(tmp_path):
    model, x = _small_classifier(), torch.rand(96, 3, 12, 12)
    with torch.no_grad():  # every class's weights within 0.1 % of one row, below int8's resolution: near-ties
        head = model[-1].weight
        head.copy_(head[:1] * (1 + 1e-3 * torch.randn_like(head)))
        model[-1].bias.zero_()
    # a floor no 8-bit model can promise: every safer layout is tried in turn unless one reaches it
    result = quantize_static_onnx(model, x[:64], tmp_path / "m.onnx", held_out=x[64:], min_agreement=1.0)
    layouts = [(a["int8_format"], a["keep_fp32"]) for a in result.attempts]
    full = [(resolve_int8_format().name, 0), ("u8u8", 0), ("u8u8", "auto")]
    full = [step for i, step in enumerate(full) if step not in full[:i]]
    assert layouts == full[: len(layouts)]
    scores = [a["confident_agreement"] for a in result.attempts]
    assert len(layouts) >= 2  # near-ties: plain INT8 flips some of them
    assert all(score < 1.0 for score in scores[:-1]) and (scores[-1] == 1.0 or len(layouts) == len(full))
    assert result.below_floor == (max(scores) < 1.0)
    # the file written is the best attempt, measured again here
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x[64:].numpy()})[0]
    assert float(np.mean(got.argmax(1) == model(x[64:]).argmax(1).numpy())) == pytest.approx(result.held_out["agreement"])
    assert ("BELOW ITS FLOOR" in result.summary()) == result.below_floor


def test_the_floor_needs_class_scores_and_a_fraction(tmp_path):
    with pytest.raises(DeepSeekError, match=r"held_out.*classifier"):
        quantize_static_onnx(torch.nn.Conv2d(3, 4, 3), torch.rand(8, 3, 8, 8), tmp_path / "m.onnx",
                             held_out=torch.rand(4, 3, 8, 8))
    with pytest.raises(DeepSeekError, match="min_agreement"):
        quantize_static_onnx(_small_classifier(), torch.rand(8, 3, 8, 8), tmp_path / "m.onnx",
                             held_out=torch.rand(4, 3, 8, 8), min_agreement=1.5)
    assert not (tmp_path / "m.onnx").exists()


def test_depthwise_convolutions_add_exactly_on_every_cpu(tmp_path):
    """The overflow fix leaves depthwise layers alone because ORT's depthwise kernels widen first: checked here."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, padding=1, groups=32)).eval()
    with torch.no_grad():
        w = model[0].weight
        w.copy_(w.sign() * (0.6 + 0.4 * torch.rand_like(w)))
    x = torch.rand(4, 32, 10, 10)
    path = tmp_path / "dw.onnx"
    assert quantize_static_onnx(model, x, path, int8_format="u8s8-overflow-fix").overflow == []
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    s_x, z_x = float(inits["input_scale"]), int(inits["input_zero_point"])
    w = inits["0.weight_quantized"].astype(np.int64)[:, 0]
    a = np.pad(np.clip(np.round(x.numpy() / s_x) + z_x, 0, 255), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=z_x)
    exact = sum((a[:, :, i:i + 10, j:j + 10] - z_x) * w[None, :, i, j, None, None] for i in range(3) for j in range(3))
    expected = exact * s_x * inits["0.weight_scale"][None, :, None, None] + \
        (inits["0.bias_quantized"] * inits["0.bias_quantized_scale"])[None, :, None, None]
    # 2 x 255 x 127 per tap pair would saturate an int16 sum; ORT's float output is exact up to float rounding
    assert "output_scale" not in inits
    assert np.abs(_ort(path, x.numpy()) - expected).max() <= 1e-4 * np.abs(expected).max()


def test_one_dimensional_convolutions_quantize_and_are_left_at_8_bits(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 14, 3)).eval()
    result = quantize_static_onnx(model, torch.rand(32, 4, 16), tmp_path / "c1.onnx", int8_format="u8s8-overflow-fix")
    assert all(r["node"] != "node_conv1d" for r in result.overflow)  # only the Linear is replayed
    got = _ort(tmp_path / "c1.onnx", torch.rand(4, 4, 16).numpy())
    assert got.shape == (4, 3) and np.isfinite(got).all()
