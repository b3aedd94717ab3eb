import numpy as np
import pytest
import torch

import deepseek
from deepseek import runtime


@pytest.fixture(scope="module")
def reference(tiny_cnn):
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, tiny_cnn(x).numpy()


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_module_backends_agree_with_pytorch(tiny_cnn, image_input, reference, backend):
    x, ref = reference
    p = runtime.load(tiny_cnn, backend, example_inputs=image_input)
    assert p.backend == backend
    np.testing.assert_allclose(p(x), ref, atol=1e-4)
    out = p.run({"input": x.numpy()})
    assert isinstance(out, list) and out[0].shape == (3, 10)


@pytest.mark.slow
def test_torch_compile_backend():
    torch.manual_seed(0)  # a small conv net: Inductor's compile time grows with the graph (ResNet-18: 25 s)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    x = torch.randn(3, 3, 32, 32)
    p = runtime.load(model, "torch.compile", example_inputs=x[:1])
    assert p.backend == "compile"
    with torch.no_grad():
        np.testing.assert_allclose(p(x), model(x).numpy(), atol=1e-4)


def test_files_of_every_kind_load_and_agree(tiny_cnn, image_input, reference, tmp_path):
    x, ref = reference
    torch.export.save(torch.export.export(tiny_cnn, (x,)), tmp_path / "m.pt2")
    torch.jit.save(torch.jit.trace(tiny_cnn, image_input), tmp_path / "m.pt")
    torch.save(tiny_cnn.state_dict(), tmp_path / "m.pth")
    from safetensors.torch import save_file

    save_file(tiny_cnn.state_dict(), tmp_path / "m.safetensors")
    deepseek.export_onnx(tiny_cnn, image_input, tmp_path / "m.onnx")

    cases = [("m.pt2", {}), ("m.pt", {}), ("m.onnx", {}),
             ("m.pth", {"arch": "torchvision:resnet18"}), ("m.safetensors", {"arch": "torchvision:resnet18"})]
    for name, kw in cases:
        p = runtime.load(tmp_path / name, **kw) if "arch" not in kw else _load_10_class(tmp_path / name)
        np.testing.assert_allclose(p(x), ref, atol=1e-4, err_msg=name)
    assert runtime.load(tmp_path / "m.onnx").backend == "onnxruntime"
    # a .pt2 carries its example inputs, so it can go to ONNX Runtime without more information
    p = runtime.load(tmp_path / "m.pt2", "onnxruntime")
    np.testing.assert_allclose(p(x), ref, atol=1e-4)


def _load_10_class(path):
    # torchvision:resnet18 builds a 1000-class head; our fixture has 10 classes, so the weights must not fit
    with pytest.raises(deepseek.ArtifactError, match="do not fit"):
        runtime.load(path, arch="torchvision:resnet18")
    import torchvision

    m = torchvision.models.resnet18(num_classes=10)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        m.load_state_dict(load_file(str(path)))
    else:
        m.load_state_dict(torch.load(path, weights_only=True))
    return runtime.load(m.eval())


def test_pickled_model_refused_without_trust(tiny_cnn, image_input, tmp_path):
    torch.save(tiny_cnn, tmp_path / "whole.pt")
    with pytest.raises(deepseek.ArtifactError, match="trust_pickle"):
        runtime.load(tmp_path / "whole.pt")
    p = runtime.load(tmp_path / "whole.pt", trust_pickle=True)
    assert p(image_input).shape == (1, 10)


def test_bad_inputs_give_clear_errors(tiny_cnn, image_input, tmp_path):
    p = runtime.load(tiny_cnn, "onnxruntime", example_inputs=image_input)
    with pytest.raises(deepseek.InvalidArgumentError, match=r"got shape \(1, 3, 64\), expected \(N, 3, 64, 64\)"):
        p(torch.randn(1, 3, 64))
    with pytest.raises(deepseek.InvalidArgumentError, match="dtype"):
        p(np.zeros((1, 3, 64, 64), dtype=np.int64))
    with pytest.raises(deepseek.InvalidArgumentError, match="inputs"):
        p.run({"wrong": image_input.numpy()})
    with pytest.raises(deepseek.InvalidArgumentError, match="2 input"):
        p.run((image_input, image_input))
    eager = runtime.load(tiny_cnn)  # no example inputs: the model itself rejects the shape
    with pytest.raises(deepseek.InvalidArgumentError, match="rejected"):
        eager(torch.randn(1, 5, 64, 64))


def test_bad_files_and_names(tmp_path, tiny_cnn):
    with pytest.raises(deepseek.InvalidArgumentError, match="not found"):
        runtime.load(tmp_path / "missing.onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(deepseek.ArtifactError, match="not a loadable ONNX model"):
        runtime.load(bad)
    with pytest.raises(deepseek.InvalidArgumentError, match="backend"):
        runtime.load(tiny_cnn, "tvmx")
    with pytest.raises(deepseek.InvalidArgumentError, match="example_inputs"):
        runtime.load(tiny_cnn, "onnxruntime")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(deepseek.MissingDependencyError, match=r"CUDAExecutionProvider"):
            runtime.load(tiny_cnn, "onnxruntime", device="cuda", example_inputs=torch.randn(1, 3, 64, 64))
    weird = tmp_path / "m.xyz"
    weird.write_text("x")
    with pytest.raises(deepseek.InvalidArgumentError, match="model"):
        runtime.load(weird)


def test_temporary_export_is_removed_with_the_predictor(tiny_cnn, image_input):
    import gc

    p = runtime.load(tiny_cnn, "onnxruntime", example_inputs=image_input)
    folder = p.onnx_path.parent
    assert folder.exists()
    del p
    gc.collect()
    assert not folder.exists()


@pytest.mark.parametrize("env, given, expected", [("3", None, 3), ("3", 2, 2), ("", None, 0), ("4,2", None, 0),
                                                  ("0", None, 0)])
def test_onnx_runtime_threads_follow_omp_num_threads_unless_given(monkeypatch, env, given, expected):
    from deepseek.runtime.backends import session_options

    monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert session_options(threads=given).intra_op_num_threads == expected  # 0: ONNX Runtime's own default
