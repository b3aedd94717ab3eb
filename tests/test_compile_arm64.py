"""The arm64 bundle, end to end: ExecuTorch + XNNPACK program, cross-built C ABI library, run under qemu
(cortex-a72) and compared with PyTorch. Skips where the cross toolchain, qemu or ExecuTorch is absent
(`make test` installs them)."""

import shutil
import subprocess

import pytest
import torch

from _arm64_nets import SmallNet
from deepseek import InvalidArgumentError, MissingDependencyError

pytestmark = pytest.mark.slow
executorch = pytest.importorskip("executorch")
needs_toolchain = pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")),
    reason="needs g++-aarch64-linux-gnu and qemu-user (apt-get install g++-aarch64-linux-gnu qemu-user)")


@needs_toolchain
def test_bundle_runs_under_qemu_cortex_a72_and_matches_pytorch(tmp_path):
    from deepseek.compile.arm64 import build_arm64

    torch.manual_seed(0)
    model = SmallNet().eval()
    x = torch.randn(1, 3, 32, 32)
    built = build_arm64(model, (x,), tmp_path / "model_arm.so")
    assert built.max_abs_diff is not None and built.max_abs_diff <= 1e-4
    names = {p.name for p in built.bundle.iterdir()}
    assert {"model_arm.so", "model_arm.h", "run_model.c", "run_model", "lib", "README.txt"} <= names
    assert {p.name for p in (built.bundle / "lib").iterdir()} >= {"libexecutorch.so", "libexecutorch_backend_xnnpack.so"}
    elf = built.library.read_bytes()[:20]
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64
    assert "int model_forward(const float* input, float* output, int64_t output_capacity);" in (built.bundle / "model_arm.h").read_text()
    # the shipped runner, on zeros, agrees with PyTorch on zeros (a second input, outside the build's check)
    zeros = torch.zeros_like(x)
    zeros.numpy().astype("<f4").tofile(tmp_path / "zeros.f32")
    subprocess.run(["qemu-aarch64", "-cpu", "cortex-a72", "-L", "/usr/aarch64-linux-gnu", str(built.bundle / "run_model"),
                    str(tmp_path / "zeros.f32"), str(tmp_path / "out.f32")], check=True, capture_output=True)
    import numpy as np

    got = torch.from_numpy(np.fromfile(tmp_path / "out.f32", dtype="<f4")).reshape(1, 5)
    with torch.no_grad():
        torch.testing.assert_close(got, model(zeros), atol=1e-4, rtol=1e-4)


@needs_toolchain
def test_cli_compiles_a_pt2_for_arm64(tmp_path):
    from deepseek.compile.pipeline import compile_model

    torch.manual_seed(0)
    torch.export.save(torch.export.export(SmallNet().eval(), (torch.randn(1, 3, 32, 32),)), tmp_path / "net.pt2")
    result = compile_model(str(tmp_path / "net.pt2"), target_arch="arm64", optimization_level=3,
                           output=str(tmp_path / "net_arm.so"), inputs=[(1, 3, 32, 32)])
    assert result["backend"] == "executorch+xnnpack" and result["verified_under"] == "qemu-aarch64 -cpu cortex-a72"
    assert result["max_abs_diff"] <= 1e-4 and (tmp_path / "net_arm.so").is_file()
    int8 = compile_model(str(tmp_path / "net.pt2"), target_arch="arm64", optimization_level=3, inputs=[(1, 3, 32, 32)],
                         output=str(tmp_path / "net_arm_int8.so"), quantize="int8", calib="photos", samples=24)
    assert int8["precision"] == "int8" and int8["checked_samples"] == 6 and 0 <= int8["int8_agreement"] <= 1


def test_missing_cross_compiler_says_what_to_install(tmp_path, monkeypatch):
    from deepseek.compile.arm64 import build_arm64

    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without the toolchain
    with pytest.raises(MissingDependencyError, match="apt-get install g\\+\\+-aarch64-linux-gnu"):
        build_arm64(SmallNet().eval(), (torch.randn(1, 3, 8, 8),), tmp_path / "m.so")
    assert not (tmp_path / "m.so").exists()


def test_bad_arm64_arguments(tmp_path):
    from deepseek.compile.arm64 import build_arm64
    from deepseek.compile.pipeline import compile_model

    with pytest.raises(InvalidArgumentError, match=r"^output"):
        build_arm64(SmallNet().eval(), (torch.randn(1, 3, 8, 8),), tmp_path / "m.onnx")
    with pytest.raises(InvalidArgumentError, match=r"^examples"):
        build_arm64(SmallNet().eval(), (torch.randn(1, 3, 8, 8).long(),), tmp_path / "m.so")
    torch.export.save(torch.export.export(SmallNet().eval(), (torch.randn(1, 3, 8, 8),)), tmp_path / "n.pt2")
    with pytest.raises(InvalidArgumentError, match=r"^output"):
        compile_model(str(tmp_path / "n.pt2"), target_arch="arm64", optimization_level=2, output=str(tmp_path / "x.onnx"))


@needs_toolchain
def test_int8_bundle_with_the_xnnpack_quantizer(tmp_path):
    from deepseek import assets
    from deepseek.compile.arm64 import build_arm64

    torch.manual_seed(0)
    model = SmallNet().eval()
    photos = assets.photo_calibration_batch(40, size=32)  # real photo crops
    x = photos[:1]
    fp32 = build_arm64(model, (x,), tmp_path / "fp32.so")
    int8 = build_arm64(model, (x,), tmp_path / "int8.so", calibration=[photos[8:]], check=[photos[:8]])
    assert int8.precision == "int8" and int8.int8_agreement is not None and 0 <= int8.int8_agreement <= 1
    assert int8.program_bytes < fp32.program_bytes  # int8 weights in the program
    assert int8.max_abs_diff is not None  # ran under qemu and stayed within twice the reference's error


@needs_toolchain
def test_runtime_loads_the_bundle(tmp_path):
    import numpy as np

    import deepseek
    from deepseek.compile.arm64 import build_arm64

    torch.manual_seed(0)
    model = SmallNet().eval()
    x = torch.randn(1, 3, 16, 16)
    build_arm64(model, (x,), tmp_path / "net_arm.so")
    predictor = deepseek.load(tmp_path / "net_arm.so")
    assert predictor.kind == "arm64_bundle" and predictor.backend == "executorch"
    y = torch.randn(1, 3, 16, 16)  # another input than the build's check
    with torch.no_grad():
        np.testing.assert_allclose(predictor(y), model(y).numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(InvalidArgumentError, match="inputs"):
        predictor(torch.randn(2, 3, 16, 16))  # shapes are fixed at compile time


def test_a_non_arm64_library_is_refused(tmp_path):
    import deepseek

    fake = tmp_path / "x86.so"
    fake.write_bytes(b"\x7fELF" + bytes(14) + (62).to_bytes(2, "little") + bytes(40))  # EM_X86_64
    with pytest.raises(InvalidArgumentError, match="AArch64"):
        deepseek.load(fake)


class DataDependent(torch.nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x  # Python control flow on a value: torch.export cannot capture it


def test_a_model_that_fails_to_export_says_why_and_writes_nothing(tmp_path):
    from deepseek import DeepSeekError
    from deepseek.compile.arm64 import export_program

    with pytest.raises(DeepSeekError, match=r"torch.export: Could not guard on data-dependent .* in forward"):
        export_program(DataDependent(), (torch.randn(1, 4),), tmp_path / "m.pte")
    assert not (tmp_path / "m.pte").exists()
