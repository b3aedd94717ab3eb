"""The cuda target's float16 ONNX: converted where measured ranges allow, checked on the CPU against PyTorch;
run on the CUDA execution provider only where a GPU is present."""

import numpy as np
import onnx
import pytest
import torch

import deepseek
from deepseek.compile.onnx_fp16 import FP16_MAX, convert_fp16
from deepseek.compile.pipeline import compile_model


class Scaler(torch.nn.Module):
    """A conv whose output reaches ~2e5 (beyond float16's 65504), then a conv that brings it back."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.down = torch.nn.Conv2d(8, 4, 1)
        with torch.no_grad():
            self.up.weight.mul_(2e5)
            self.down.weight.mul_(1e-5)

    def forward(self, x):
        return self.down(torch.relu(self.up(x))).mean((2, 3))


def _fp16_initializers(path):
    return sum(i.data_type == onnx.TensorProto.FLOAT16 for i in onnx.load(str(path)).graph.initializer)


def test_cuda_target_writes_fp16_checked_against_pytorch(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    result = compile_model(str(tmp_path / "r18.pth"), target_arch="cuda", optimization_level=2,
                           output=str(tmp_path / "r18_fp16.onnx"), inputs=[(1, 3, 64, 64)], arch="torchvision:resnet18")
    assert result["precision"] == "fp16" and result["fp16_nodes"] > 40 and result["max_abs_diff"] <= result["tolerance"]
    fp32 = compile_model(str(tmp_path / "r18.pth"), target_arch="cuda", optimization_level=2, precision="fp32",
                         output=str(tmp_path / "r18_fp32.onnx"), inputs=[(1, 3, 64, 64)], arch="torchvision:resnet18")
    assert fp32["precision"] == "fp32" and result["size_bytes"] < 0.6 * fp32["size_bytes"]  # half-width weights
    assert _fp16_initializers(tmp_path / "r18_fp16.onnx") > 20 and _fp16_initializers(tmp_path / "r18_fp32.onnx") == 0
    predictor = deepseek.load(tmp_path / "r18_fp16.onnx")  # inputs and outputs stay float32
    x = torch.randn(2, 3, 64, 64)
    np.testing.assert_allclose(predictor(x.numpy()), model(x).detach().numpy(), atol=5e-2, rtol=5e-2)


def test_nodes_near_the_float16_range_stay_fp32(tmp_path):
    torch.manual_seed(0)
    model = Scaler().eval()
    x = torch.rand(1, 3, 8, 8)
    source = deepseek.export_onnx(model, x, tmp_path / "s.onnx").path
    assert float(model.up(x).abs().max()) > FP16_MAX  # the conv output overflows float16
    result = convert_fp16(source, tmp_path / "s16.onnx", [{"input": x.numpy()}])
    assert len(result.kept_fp32) == 3 and result.largest_activation > FP16_MAX  # conv, relu overflow; tiny weights
    import onnxruntime as ort

    got = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=2e-2, atol=1e-2)


def test_fp16_is_refused_for_cpu_targets(tmp_path):
    torch.export.save(torch.export.export(Scaler().eval(), (torch.rand(1, 3, 8, 8),)), tmp_path / "m.pt2")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^precision"):
        compile_model(str(tmp_path / "m.pt2"), target_arch="x86_64", optimization_level=2, output=str(tmp_path / "m.onnx"),
                      precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_artifact_runs_on_the_cuda_provider(tmp_path):  # pragma: no cover - CI has no GPU
    import torchvision

    model = torchvision.models.resnet18().eval()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    compile_model(str(tmp_path / "r18.pth"), target_arch="cuda", optimization_level=2, output=str(tmp_path / "g.onnx"),
                  inputs=[(1, 3, 64, 64)], arch="torchvision:resnet18")
    x = torch.randn(2, 3, 64, 64)
    got = deepseek.load(tmp_path / "g.onnx", device="cuda")(x.numpy())
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=5e-2, rtol=5e-2)
