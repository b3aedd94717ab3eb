import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import deepseek
from deepseek.compile import export_onnx, verify_onnx


def test_export_has_dynamic_batch_and_matches_pytorch(tiny_cnn, image_input, tmp_path):
    result = export_onnx(tiny_cnn, image_input, tmp_path / "m.onnx")
    assert result.path.exists() and result.size_bytes == result.path.stat().st_size
    assert result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    onnx.checker.check_model(str(result.path))
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert not isinstance(sess.get_inputs()[0].shape[0], int)  # symbolic batch
    x = torch.randn(5, 3, 64, 64)
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, tiny_cnn(x).detach().numpy(), atol=1e-4)
    # resnet18's ReLUs are in-place: exported out of place (faster to trace), then given back as they were
    relus = [m for m in tiny_cnn.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and all(m.inplace for m in relus)


def test_in_place_activations_are_restored_when_the_export_fails(tmp_path):
    model = torch.nn.Sequential(torch.nn.ReLU(inplace=True), Unexportable())
    with pytest.raises(deepseek.DeepSeekError):
        export_onnx(model, torch.randn(3, 3), tmp_path / "m.onnx")
    assert model[0].inplace is True


def test_batch_one_example_still_exports_a_dynamic_batch(tmp_path):
    # torch.export specializes size-1 dims: traced at batch 1, nn.MultiheadAttention's reshapes kept batch 1
    import torchvision

    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                               hidden_dim=32, mlp_dim=64, num_classes=5).eval()
    torch.nn.init.normal_(vit.heads.head.weight)  # torchvision zero-initialises the head: outputs would all be equal
    result = export_onnx(vit, torch.randn(1, 3, 32, 32), tmp_path / "vit.onnx")
    assert result.dynamic_batch
    x = torch.randn(3, 3, 32, 32)
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, vit(x).numpy(), atol=1e-4, rtol=1e-3)


def test_export_static_batch(tiny_cnn, image_input, tmp_path):
    result = export_onnx(tiny_cnn, image_input, tmp_path / "m.onnx", dynamic_batch=False)
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == 1


class TwoInTwoOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 3)

    def forward(self, x, y):
        return self.a(x) + y, self.a(x).relu()


def test_export_multiple_inputs_and_outputs(tmp_path):
    m = TwoInTwoOut().eval()
    args = (torch.randn(2, 4), torch.randn(2, 3))
    result = export_onnx(m, args, tmp_path / "m.onnx", input_names=["x", "y"])
    assert result.input_names == ("x", "y")
    assert result.output_names == ("output_0", "output_1")


def test_verification_catches_a_wrong_artifact(tmp_path):
    m = TwoInTwoOut().eval()
    args = (torch.randn(2, 4), torch.randn(2, 3))
    result = export_onnx(m, args, tmp_path / "m.onnx")
    other = TwoInTwoOut().eval()  # different random weights
    with torch.no_grad():
        other.a.weight.add_(1.0)
    with pytest.raises(deepseek.VerificationError, match="differs"):
        verify_onnx(result.path, other, args)


def test_export_rejects_bad_arguments(tiny_cnn, image_input, tmp_path):
    with pytest.raises(deepseek.InvalidArgumentError, match="path"):
        export_onnx(tiny_cnn, image_input, tmp_path / "m.txt")
    with pytest.raises(deepseek.InvalidArgumentError, match="model"):
        export_onnx("not a model", image_input, tmp_path / "m.onnx")
    with pytest.raises(deepseek.InvalidArgumentError, match="example_inputs"):
        export_onnx(tiny_cnn, ["a string"], tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


class Unexportable(torch.nn.Module):
    def forward(self, x):
        return torch.linalg.eig(x)[0].real  # no ONNX function exists for aten.linalg_eig


def test_export_failure_names_the_operator_and_writes_nothing(tmp_path):
    with pytest.raises(deepseek.DeepSeekError, match=r"failed to export.*aten\.linalg_eig"):
        export_onnx(Unexportable(), torch.randn(3, 3), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


class SquareOnly(torch.nn.Module):
    def forward(self, x):
        return x @ x  # dimension 0 must equal dimension 1: not a batch dimension


def test_dimension_zero_that_is_not_a_batch_falls_back_to_static(tmp_path):
    with pytest.warns(UserWarning, match="static batch"):
        result = export_onnx(SquareOnly(), torch.randn(3, 3), tmp_path / "m.onnx")
    assert result.dynamic_batch is False and result.max_abs_diff < 1e-4


@pytest.mark.slow
def test_export_hugging_face_bert_and_gpt2(tmp_path):
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    from deepseek.models import HiddenStates, Logits

    bert = HiddenStates(BertModel(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                             intermediate_size=128), add_pooling_layer=False)).eval()
    ids = torch.randint(0, 1000, (2, 16))
    r = export_onnx(bert, (ids, torch.ones_like(ids)), tmp_path / "bert.onnx", input_names=["input_ids", "attention_mask"])
    assert r.max_abs_diff < 1e-3
    gpt = Logits(GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=2)).eval()).eval()
    r = export_onnx(gpt, (ids,), tmp_path / "gpt2.onnx", input_names=["input_ids"])
    assert r.max_abs_diff < 1e-3


def test_compile_x86_from_a_pt2(tmp_path):
    # a loaded .pt2's module refuses .eval(): compiling one used to fail before exporting
    from deepseek.compile.pipeline import compile_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(4))
    x = torch.randn(1, 3, 8, 8)
    model(x)
    torch.export.save(torch.export.export(model.eval(), (x,)), tmp_path / "m.pt2")
    result = compile_model(str(tmp_path / "m.pt2"), target_arch="x86_64", optimization_level=3,
                           output=str(tmp_path / "m.onnx"), inputs=[(1, 3, 8, 8)])
    assert result["max_abs_diff"] <= result["tolerance"]
    assert (result.backend, result.target_arch, result.precision) == ("onnxruntime", "x86_64", "fp32")
    assert result.size_bytes == (tmp_path / "m.onnx").stat().st_size and dict(result) == result.to_dict()
    said = result.summary()  # what `deepseek compile` prints, from the result itself
    assert said[0].startswith("backend: onnxruntime — ") and "ORT level all" in said[-1] and "max abs diff" in said[-1]
    got = deepseek.load(tmp_path / "m.onnx")(x)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4, rtol=1e-4)


def test_compile_x86_int8_calibrated_on_real_photos(tmp_path):
    from deepseek.compile.pipeline import compile_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 32, 32),)), tmp_path / "m.pt2")
    result = compile_model(str(tmp_path / "m.pt2"), target_arch="x86_64", optimization_level=2, output=str(tmp_path / "q.onnx"),
                           inputs=[(1, 3, 32, 32)], quantize="int8", calib="photos", samples=32)
    assert result["precision"] == "int8" and result["checked_samples"] == 8 and 0 <= result["int8_agreement"] <= 1
    low, high = result["int8_agreement_interval"]  # 8 samples: the figure is loose, and the report says how loose
    assert low <= result["int8_agreement"] <= high and high - low > 0.25
    assert result["size_bytes"] < result["fp32_size_bytes"]
    said = result.summary()
    assert "(INT8, " in said[1] and "95 % interval" in said[1] and said[2] == result["int8_summary"]
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^quantize"):
        compile_model(str(tmp_path / "m.pt2"), target_arch="cuda", optimization_level=2, output=str(tmp_path / "c.onnx"),
                      quantize="int8")


def test_compile_with_prune_recipe(tmp_path):
    import torchvision

    from deepseek.compile.pipeline import compile_model

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    result = compile_model(str(tmp_path / "r18.pth"), target_arch="x86_64", optimization_level=2, output=str(tmp_path / "p.onnx"),
                           inputs=[(1, 3, 64, 64)], arch="torchvision:resnet18", prune=0.5)
    assert result["pruned"]["param_ratio"] < 0.35 and result["max_abs_diff"] <= result["tolerance"]  # checked vs the pruned model
    assert (tmp_path / "p.onnx").stat().st_size < 0.35 * 4 * sum(p.numel() for p in model.parameters())
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 64, 64),)), tmp_path / "r18.pt2")
    with pytest.raises(deepseek.InvalidArgumentError, match=r"prune the nn\.Module, then export"):
        compile_model(str(tmp_path / "r18.pt2"), target_arch="x86_64", optimization_level=2, output=str(tmp_path / "q.onnx"),
                      inputs=[(1, 3, 64, 64)], prune=0.5)
    assert not (tmp_path / "q.onnx").exists()
