"""OpenVINO as a backend of deepseek.load, and NNCF's INT8 for it (the peer the ONNX Runtime INT8 is measured against)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepseek import DeepSeekError, load
from deepseek.runtime.onnx_export import export_onnx

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from deepseek.quantization.openvino_ptq import quantize_openvino


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()


def test_an_onnx_file_and_a_module_run_on_openvino_like_on_pytorch(tmp_path):
    model, x = _net(), torch.rand(4, 3, 16, 16)
    path = export_onnx(model, x[:1], tmp_path / "m.onnx", input_names=["input"]).path
    want = model(x).detach().numpy()
    for predictor in (load(path, backend="openvino"), load(model, backend="ov", example_inputs=x[:1])):
        assert predictor.backend == "openvino" and predictor.input_specs[0].shape[1:] == (3, 16, 16)
        np.testing.assert_allclose(predictor.run(x.numpy())[0], want, rtol=1e-4, atol=1e-5)


def test_nncf_int8_writes_openvino_ir_that_load_runs_and_that_agrees_with_fp32(tmp_path):
    model, x = _net(), torch.rand(64, 3, 16, 16)
    result = quantize_openvino(model, x[:48], tmp_path / "m_int8.xml")
    assert result.path.exists() and (tmp_path / "m_int8.bin").exists() and result.calibration_samples == 48
    assert result.size_bytes == result.path.stat().st_size + (tmp_path / "m_int8.bin").stat().st_size
    predictor = load(result.path)  # an .xml is OpenVINO IR: the openvino backend by default
    assert predictor.backend == "openvino"
    got = predictor.run(x[48:].numpy())[0]
    want = model(x[48:]).detach().numpy()
    # 8-bit weights and activations on a 3-layer net: within a few percent of the output range
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max() + 1e-3
    assert not any(tmp_path.glob(".*.tmp"))  # written through temporary files, nothing left behind


def test_accuracy_control_keeps_agreement_on_the_held_out_inputs(tmp_path):
    model, x = _net(), torch.rand(64, 3, 16, 16)
    result = quantize_openvino(model, x[:32], tmp_path / "ac.xml", held_out=x[32:], max_drop=0.0)
    assert result.accuracy_control and result.max_drop == 0.0
    got = load(result.path).run(x[32:].numpy())[0]
    assert (got.argmax(1) == model(x[32:]).argmax(1).numpy()).mean() == 1.0


def test_bad_arguments_are_named_and_write_nothing(tmp_path):
    model, x = _net(), torch.rand(8, 3, 16, 16)
    with pytest.raises(DeepSeekError, match=r"output.*xml"):
        quantize_openvino(model, x, tmp_path / "m.onnx")
    with pytest.raises(DeepSeekError, match="max_drop"):
        quantize_openvino(model, x, tmp_path / "m.xml", max_drop=2)
    with pytest.raises(DeepSeekError, match="model"):
        quantize_openvino("not-a-model.txt", x, tmp_path / "m.xml")
    assert not list(tmp_path.iterdir())
    (tmp_path / "lonely.xml").write_text("<?xml version='1.0'?><net name='x'></net>")
    with pytest.raises(DeepSeekError, match=r"lonely\.bin"):
        load(tmp_path / "lonely.xml")
    (tmp_path / "lonely.bin").write_bytes(b"")
    with pytest.raises(DeepSeekError, match=r"backend.*openvino"):
        load(tmp_path / "lonely.xml", backend="onnxruntime")


def test_compile_with_backend_openvino_writes_verified_ir_in_fp32_and_int8(tmp_path):
    import deepseek

    model = _net()
    fp32 = deepseek.compile(model, (torch.rand(1, 3, 16, 16),), target_arch="x86_64", optimization_level=2,
                            output=str(tmp_path / "m.xml"), backend="openvino")
    assert fp32["backend"] == "openvino" and fp32["precision"] == "fp32"
    assert fp32["max_abs_diff"] <= fp32["tolerance"] and (tmp_path / "m.bin").is_file()
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).uniform(0, 1, (48, 3, 16, 16)).astype(np.float32))
    int8 = deepseek.compile(model, (torch.rand(1, 3, 16, 16),), target_arch="x86_64", optimization_level=2,
                            output=str(tmp_path / "q.xml"), backend="openvino", quantize="int8", calib=str(calib),
                            samples=48)
    assert int8["precision"] == "int8" and int8["checked_samples"] == 12  # a quarter held out, never calibrated on
    assert 0 <= int8["int8_agreement"] <= 1
    assert load(tmp_path / "q.xml").backend == "openvino"
    with pytest.raises(deepseek.InvalidArgumentError, match=r"output.*\.xml file for backend 'openvino'"):
        deepseek.compile(model, (torch.rand(1, 3, 16, 16),), target_arch="x86_64", optimization_level=2,
                         output=str(tmp_path / "m.onnx"), backend="openvino")

