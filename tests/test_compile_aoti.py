import numpy as np
import pytest
import torch

import deepseek
from deepseek.compile.pipeline import compile_model


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=4, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=4, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten())
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory):
    torch.manual_seed(0)
    model = TinyNet().eval()
    path = tmp_path_factory.mktemp("aoti") / "tiny.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 3, 224, 224),),
                                          dynamic_shapes=({0: torch.export.Dim.AUTO},)), path)
    return path, model


def test_inductor_backend_builds_a_verified_package_that_deepseek_loads(tiny_pt2, tmp_path):
    path, model = tiny_pt2
    out = tmp_path / "tiny_aoti.pt2"
    result = compile_model(str(path), target_arch="x86_64", optimization_level=3, output=str(out), backend="inductor")
    assert result["backend"] == "inductor" and result["precision"] == "fp32"
    assert result["max_abs_diff"] <= result["tolerance"] <= 1e-2
    predictor = deepseek.load(out)
    x = torch.randn(5, 3, 224, 224)  # a batch size the example did not have: the batch stays dynamic
    np.testing.assert_allclose(predictor(x.numpy()), model(x).detach().numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(deepseek.InvalidArgumentError, match=r"got shape \(5, 3, 64, 64\)"):
        predictor(np.zeros((5, 3, 64, 64), np.float32))  # the compiled code itself would not check
    with pytest.raises(deepseek.InvalidArgumentError, match="already an AOTInductor package"):
        compile_model(str(out), target_arch="x86_64", optimization_level=3, output=str(tmp_path / "again.pt2"),
                      backend="inductor")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^output"):
        compile_model(str(path), target_arch="x86_64", optimization_level=3, output=str(tmp_path / "m.onnx"),
                      backend="inductor")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^backend"):
        compile_model(str(path), target_arch="arm64", optimization_level=3, output=str(tmp_path / "m.so"),
                      backend="inductor")
    with pytest.raises(deepseek.InvalidArgumentError, match="backend"):
        deepseek.load(out, backend="onnxruntime")


def test_inductor_backend_int8_runs_integer_kernels_close_to_fp32(tiny_pt2, tmp_path, monkeypatch):
    path, model = tiny_pt2
    with pytest.raises(deepseek.InvalidArgumentError, match="none was quantized"):  # never an FP32 package called INT8
        compile_model(str(path), target_arch="x86_64", optimization_level=3, output=str(tmp_path / "no.pt2"),
                      backend="inductor", quantize="int8", calib="photos", samples=32)
    assert not (tmp_path / "no.pt2").exists()
    monkeypatch.setattr("torchvision.models.get_model", lambda name, weights=None: TinyNet())  # state_dict + --arch
    torch.save(model.state_dict(), tmp_path / "tiny.pth")
    out = tmp_path / "tiny_int8.pt2"
    result = compile_model(str(tmp_path / "tiny.pth"), target_arch="x86_64", optimization_level=3, output=str(out),
                           backend="inductor", quantize="int8", calib="photos", samples=32, inputs=[(1, 3, 224, 224)],
                           arch="torchvision:resnet18")
    assert result["precision"] == "int8" and result["max_abs_diff"] <= result["tolerance"]
    assert result["int8_agreement"] is not None and result["checked_samples"] == 8
    from torch._inductor import aoti_load_package

    x = torch.randn(4, 3, 224, 224)
    ref = model(x).detach()
    err = (aoti_load_package(str(out))(x) - ref).pow(2).mean() / ref.pow(2).mean()
    assert float(err) < 0.05  # within a few percent of FP32 energy: real int8, not garbage


def test_python_compile_takes_a_module_and_example_tensors(tmp_path):
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.randn(1, 3, 224, 224)
    result = deepseek.compile(model, (x,), target_arch="x86_64", optimization_level=3, output=str(tmp_path / "m.onnx"))
    assert result["backend"] == "onnxruntime" and result["max_abs_diff"] <= result["tolerance"]
    np.testing.assert_allclose(deepseek.load(tmp_path / "m.onnx")(x.numpy()), model(x).detach().numpy(), atol=1e-4)
    assert callable(deepseek.compile) and deepseek.compile.build_aoti is not None
    with pytest.raises(deepseek.InvalidArgumentError, match="example_inputs"):
        deepseek.compile(model, ["not a shape"], output=str(tmp_path / "n.onnx"))


def test_a_static_batch_pt2_compiles_for_its_batch_and_refuses_others(tmp_path):
    torch.manual_seed(0)
    model = TinyNet().eval()
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 224, 224),)), tmp_path / "static.pt2")
    with pytest.warns(UserWarning, match="compiled for batch 1 only"):
        compile_model(str(tmp_path / "static.pt2"), target_arch="x86_64", optimization_level=3,
                      output=str(tmp_path / "s.pt2"), backend="inductor")
    predictor = deepseek.load(tmp_path / "s.pt2")
    x = torch.randn(1, 3, 224, 224)
    np.testing.assert_allclose(predictor(x.numpy()), model(x).detach().numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(deepseek.InvalidArgumentError, match=r"expected \(1, 3, 224, 224\)"):
        predictor(np.zeros((2, 3, 224, 224), np.float32))
