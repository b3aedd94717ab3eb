"""The TVM arm64 backend, end to end: Relax compiled by LLVM for AArch64, TVM's aarch64 runtime and the example
runner under qemu (cortex-a72), compared with PyTorch. Skips where TVM, the cross toolchain or qemu is absent."""

import shutil

import numpy as np
import pytest
import torch

import deepseek
from _arm64_nets import SmallNet
from deepseek.compile.pipeline import compile_model

pytestmark = pytest.mark.slow
pytest.importorskip("tvm")
if not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")):
    pytest.skip("needs g++-aarch64-linux-gnu and qemu-user", allow_module_level=True)


def test_tvm_bundle_matches_pytorch_under_qemu_and_loads(tmp_path):
    torch.manual_seed(0)
    model = SmallNet().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding mistakes would show
        model.stem[1].running_mean.uniform_(-0.5, 0.5)
        model.stem[1].running_var.uniform_(0.5, 2.0)
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 32, 32),)), tmp_path / "net.pt2")
    result = compile_model(str(tmp_path / "net.pt2"), target_arch="arm64", optimization_level=3,
                           output=str(tmp_path / "net_arm.so"), backend="tvm")
    assert result["backend"] == "tvm" and result["verified_under"] == "qemu-aarch64 -cpu cortex-a72"
    assert result["max_abs_diff"] <= 1e-4
    bundle = tmp_path / "net_arm.bundle"
    assert {p.name for p in (bundle / "lib").iterdir()} == {"libtvm_runtime.so", "libtvm_ffi.so"}
    assert (bundle / "run_model.cc").is_file() and (bundle / "run_model").is_file()
    assert (tmp_path / "net_arm.so").read_bytes()[:4] == b"\x7fELF"
    x = torch.randn(1, 3, 32, 32)
    got = deepseek.load(tmp_path / "net_arm.so")(x.numpy())
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4, rtol=1e-4)


def test_tvm_backend_refuses_int8_and_other_targets(tmp_path):
    torch.export.save(torch.export.export(SmallNet().eval(), (torch.randn(1, 3, 8, 8),)), tmp_path / "n.pt2")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^quantize"):
        compile_model(str(tmp_path / "n.pt2"), target_arch="arm64", optimization_level=3, output=str(tmp_path / "q.so"),
                      backend="tvm", quantize="int8")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^backend"):
        compile_model(str(tmp_path / "n.pt2"), target_arch="x86_64", optimization_level=3, output=str(tmp_path / "q.onnx"),
                      backend="tvm")
    assert not list(tmp_path.glob("q*"))


def test_an_onnx_file_compiles_for_arm64_with_tvm_and_matches_onnx_runtime_under_qemu(tmp_path):
    torch.manual_seed(0)
    model = SmallNet().eval()
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(tmp_path / "net.onnx"), input_names=["image"],
                      dynamic_axes={"image": {2: "h", 3: "w"}}, dynamo=False)
    with pytest.raises(deepseek.InvalidArgumentError, match=r"inputs.*e\.g\. --inputs 1x3x1x1"):
        compile_model(str(tmp_path / "net.onnx"), target_arch="arm64", optimization_level=3,
                      output=str(tmp_path / "free.so"), backend="tvm")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"model.*an ONNX file compiles with backend 'tvm'"):
        compile_model(str(tmp_path / "net.onnx"), target_arch="arm64", optimization_level=3,
                      output=str(tmp_path / "xnn.so"))
    result = compile_model(str(tmp_path / "net.onnx"), target_arch="arm64", optimization_level=3,
                           output=str(tmp_path / "net_arm.so"), backend="tvm", inputs=[(1, 3, 24, 24)])
    assert result["backend"] == "tvm" and result["verified_under"] == "qemu-aarch64 -cpu cortex-a72"
    assert result["max_abs_diff"] <= result["tolerance"]
    x = np.random.default_rng(1).standard_normal((1, 3, 24, 24)).astype(np.float32)
    import onnxruntime as ort

    want = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(deepseek.load(tmp_path / "net_arm.so")(x), want, atol=1e-4, rtol=1e-4)
