"""deepseek optimize for arm64 and CUDA: the candidates are the real target artifacts (ExecuTorch + XNNPACK bundles
run under qemu; float32/float16 ONNX graphs), judged on held-out digits; where this host cannot time the target,
latency is refused as an objective and size is searched."""

from __future__ import annotations

import json
import platform
import shutil

import numpy as np
import onnx
import pytest
import torch
import yaml

import deepseek
from deepseek import assets
from deepseek._core.errors import InvalidArgumentError
from deepseek.optimize import OptimizeConfig, replay
from deepseek.optimize.config import latency_device
from deepseek.optimize.search import params_of

pytestmark = pytest.mark.slow
X = (torch.randn(1, 1, 8, 8),)
ON_ARM = platform.machine().lower() in ("aarch64", "arm64")
HAS_CUDA_EP = latency_device("cuda") is not None
needs_arm_toolchain = pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")),
    reason="needs g++-aarch64-linux-gnu and qemu-user (make install puts them in)")


def _held_out_accuracy(model):
    _, test = assets.digits().split(0.2, seed=0)
    with torch.no_grad():
        return float((model(test.x).argmax(1) == test.y).float().mean())


def test_each_target_searches_its_own_lowerings_and_refuses_the_others():
    assert OptimizeConfig(target="arm64").lowerings == ("xnnpack-fp32", "xnnpack-int8")
    assert OptimizeConfig(target="cuda").lowerings == ("ort-fp32", "ort-fp16")
    assert OptimizeConfig(target="arm64").baseline == "xnnpack-fp32" and OptimizeConfig().baseline == "ort-fp32"
    with pytest.raises(InvalidArgumentError, match=r"^lowerings.*xnnpack-fp32,xnnpack-int8 for target arm64"):
        OptimizeConfig(target="arm64", lowerings=("ort-int8",))
    with pytest.raises(InvalidArgumentError, match=r"^lowerings"):
        OptimizeConfig(lowerings=("xnnpack-int8",))


@pytest.mark.skipif(ON_ARM, reason="an arm64 host times arm64 bundles natively")
def test_latency_on_arm64_is_refused_where_only_qemu_runs_it(digits_cnn, tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"^objective.*size for target arm64.*qemu"):
        deepseek.optimize(digits_cnn, X, data="digits", target="arm64", output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(HAS_CUDA_EP, reason="ONNX Runtime has the CUDA execution provider here")
def test_latency_on_cuda_is_refused_without_a_cuda_provider(digits_cnn):
    with pytest.raises(InvalidArgumentError, match=r"^objective.*size for target cuda.*CUDAExecutionProvider"):
        deepseek.optimize(digits_cnn, X, data="digits", target="cuda")


@needs_arm_toolchain
def test_arm64_size_search_judges_the_real_bundles_and_replays(digits_cnn, tmp_path):
    pytest.importorskip("executorch")
    out = tmp_path / "out"
    result = deepseek.optimize(digits_cnn, X, data="digits", target="arm64", objective="size", trials=2,
                               max_accuracy_drop=1.0, output=out, progress=False)
    by = {c.params["lowering"]: c for c in result.candidates}
    assert set(by) == {"xnnpack-fp32", "xnnpack-int8"} and result.baseline is by["xnnpack-fp32"]
    fp32_accuracy = _held_out_accuracy(digits_cnn)
    assert result.reference_accuracy == pytest.approx(fp32_accuracy, abs=1e-6)
    # the FP32 bundle's outputs under qemu are PyTorch's (to float rounding): no prediction changes
    assert by["xnnpack-fp32"].scores["agreement"] == 1.0 and by["xnnpack-fp32"].scores["mean_kl"] < 1e-6
    int8 = by["xnnpack-int8"]
    assert int8.scores["drop_pp"] == pytest.approx(100 * (fp32_accuracy - int8.scores["accuracy"]), abs=1e-4)
    assert int8.scores["mean_kl"] > 0 and int8.size_bytes < by["xnnpack-fp32"].size_bytes  # really quantized
    assert all(c.latency_ms is None for c in result.candidates)  # never timed under emulation
    feasible = [c for c in result.candidates if c.feasible]
    assert result.best is min(feasible, key=lambda c: c.size_bytes)
    assert all(params_of(c.recipe) == c.params for c in result.candidates)
    names = {p.name for p in out.iterdir()}
    assert {"model_arm.so", "model_arm.bundle", "pareto.json", "pareto.png", "report.md", "recipe.yaml"} <= names
    assert "cannot time arm64" in (out / "report.md").read_text()
    assert json.loads((out / "pareto.json").read_text())["chosen"] == result.best.number
    # the shipped bundle runs on its own: many inputs in one runner process equal one at a time
    from deepseek.runtime.arm64_bundle import Arm64Backend

    rows = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    bundle = Arm64Backend(out / "model_arm.so")
    stacked = bundle.run_stacked(rows)
    single = np.concatenate([deepseek.load(out / "model_arm.so").run(rows[i:i + 1])[0] for i in range(3)])
    np.testing.assert_array_equal(stacked, single)
    with pytest.raises(InvalidArgumentError, match="multiple of 1 rows"):
        bundle.run_stacked(rows[:, :, :4])
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["compile"]["target_arch"] == "arm64"
    again = replay(out / "recipe.yaml", output=tmp_path / "again", model=digits_cnn)
    assert again["drop_pp"] == result.best.scores["drop_pp"] and again["latency_ms"] is None
    assert (tmp_path / "again" / "model_arm.bundle" / "run_model").is_file()


def test_cuda_size_search_judges_float16_graphs_and_replays(digits_cnn, tmp_path):
    out = tmp_path / "out"
    result = deepseek.optimize(digits_cnn, X, data="digits", target="cuda", objective="size", trials=2,
                               max_accuracy_drop=1.0, output=out, progress=False)
    by = {c.params["lowering"]: c for c in result.candidates}
    assert set(by) == {"ort-fp32", "ort-fp16"}
    assert by["ort-fp32"].recipe.precision == "fp32" and by["ort-fp16"].recipe.precision == "fp16"
    fp16 = by["ort-fp16"]
    assert fp16.size_bytes < 0.6 * by["ort-fp32"].size_bytes  # half-width weights
    assert fp16.scores["agreement"] >= 0.99  # float16 rounding moves logits by ~1e-3, rarely a prediction
    if fp16.feasible:
        assert result.best is fp16
    graph = onnx.load(out / "model.onnx")
    dtypes = {init.data_type for init in graph.graph.initializer}
    assert (onnx.TensorProto.FLOAT16 in dtypes) == (result.best is fp16)
    assert (result.best.latency_ms is None) == (not HAS_CUDA_EP)
    again = replay(out / "recipe.yaml", output=tmp_path / "again", model=digits_cnn)
    assert again["drop_pp"] == result.best.scores["drop_pp"] and again["size_bytes"] == result.best.size_bytes


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA_EP, reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_latency_search_times_candidates_on_the_gpu(digits_cnn, tmp_path):
    result = deepseek.optimize(digits_cnn, X, data="digits", target="cuda", trials=2, max_accuracy_drop=1.0,
                               progress=False)
    assert result.baseline.latency_ms is not None and result.best.latency_ms is not None
