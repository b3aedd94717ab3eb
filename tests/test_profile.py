import json
import subprocess
import sys

import pytest
import torchvision

import deepseek


@pytest.fixture(scope="module")
def resnet18():
    return torchvision.models.resnet18().eval()


def _input():
    import torch

    return torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_eager_profile_attributes_time_to_convolutions(resnet18, tmp_path, printed_table):
    r = deepseek.profile(resnet18, _input(), runs=2, warmup=1)
    assert r.backend == "eager" and r.total_ms_per_run > 0
    assert "conv" in r.operators[0].name.lower()  # convolutions dominate a ResNet
    assert sum(o.share for o in r.operators) == pytest.approx(100, abs=0.5)
    assert sum(ly.share for ly in r.layers) == pytest.approx(100, abs=0.5)
    names = {ly.name for ly in r.layers}
    assert {"conv1", "layer1.0.conv1", "fc"} <= names
    assert next(ly for ly in r.layers if ly.name == "conv1").params == 3 * 64 * 7 * 7
    r.save_json(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["operators"][0]["name"] == r.operators[0].name
    r.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "Top operators" in r.summary()
    printed_table(r.table("operators"), r.operators[0].name)
    printed_table(r.table("layers"), "layer1.0.conv1")


def test_onnxruntime_profile_maps_nodes_back_to_modules(resnet18):
    r = deepseek.profile(resnet18, _input(), backend="onnxruntime", runs=2, warmup=1)
    assert r.operators[0].name in ("Conv", "FusedConv")
    assert sum(o.share for o in r.operators) == pytest.approx(100, abs=0.5)
    assert any(ly.name.startswith("layer") for ly in r.layers)  # the exporter's scopes name the PyTorch module


def test_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deepseek", "profile", "resnet18", "--runs", "1", "--top", "5",
                           "--json", str(tmp_path / "p.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "aten::" in proc.stdout and (tmp_path / "p.json").exists()
    bad = subprocess.run([sys.executable, "-m", "deepseek", "profile", str(tmp_path / "missing.onnx")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.onnx" in bad.stderr


def test_bad_arguments(resnet18):
    with pytest.raises(deepseek.InvalidArgumentError, match="backend"):
        deepseek.profile(resnet18, _input(), backend="nope")
    with pytest.raises(deepseek.InvalidArgumentError, match="batch_size"):
        deepseek.profile(resnet18, _input(), batch_size=0)
    with pytest.raises(deepseek.InvalidArgumentError, match="inputs"):
        deepseek.profile(resnet18)
