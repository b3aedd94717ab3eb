import subprocess
import sys

import numpy as np
import pytest
import torch

import deepseek
from deepseek import assets
from deepseek._core.errors import InvalidArgumentError
from deepseek.evaluation import evaluate
from deepseek.train import fit_classifier


class DigitNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.nn.functional.max_pool2d(self.conv(x).relu(), 2).flatten(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CNN trained on the digits train split (the evaluator uses the held-out test split)."""
    torch.manual_seed(0)
    train, _ = assets.digits().split(0.2, seed=0)
    model = fit_classifier(DigitNet(), train, epochs=15)
    folder = tmp_path_factory.mktemp("digits")
    example = torch.zeros(2, 1, 8, 8)
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)),
                      folder / "m.pt2")
    deepseek.export_onnx(model, example, folder / "m.onnx")
    return model, folder


def test_trained_model_is_accurate_on_both_backends(trained):
    _, folder = trained
    r_pt = evaluate(folder / "m.pt2", data="digits")
    r_ort = evaluate(folder / "m.onnx")  # data inferred from the 1x8x8 input
    assert r_ort.data == "digits" and r_ort.samples == round(0.2 * 1797)
    assert r_pt.value > 0.9 and r_ort.value == pytest.approx(r_pt.value, abs=1e-6)
    assert r_ort.metric == "accuracy" and r_ort.latency_ms > 0 and r_ort.throughput > 0
    assert set(r_ort.extra["per_class_accuracy"]) == {str(i) for i in range(10)}


def test_untrained_model_scores_near_chance():
    torch.manual_seed(1)
    r = evaluate(DigitNet().eval(), data="digits", backend="eager")
    assert r.value < 0.3


def test_cli_gates_on_min_accuracy(trained):
    _, folder = trained
    cmd = [sys.executable, "-m", "deepseek", "evaluate", "--model", str(folder / "m.onnx"), "--data", "digits"]
    fail = subprocess.run([*cmd, "--min-accuracy", "0.999"], capture_output=True, text=True, timeout=300)
    assert fail.returncode == 1 and "FAIL" in fail.stdout
    ok = subprocess.run([*cmd, "--min-accuracy", "0.5"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "PASS" in ok.stdout
    bad = subprocess.run([*cmd, "--min-accuracy", "90"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--min-accuracy" in bad.stderr


def test_shape_mismatch_names_both_shapes(trained):
    _, folder = trained
    with pytest.raises(deepseek.InvalidArgumentError, match=r"\(N, 1, 28, 28\).*\(N, 1, 8, 8\)"):
        evaluate(folder / "m.onnx", data="mnist-5k")
    with pytest.raises(deepseek.InvalidArgumentError, match="data"):
        evaluate(folder / "m.onnx", data="imagenet")


@pytest.mark.slow
def test_photo_agreement_of_exported_mobilenet(tmp_path):
    deepseek.export_onnx(assets.mobilenet_v2(), torch.randn(1, 3, 224, 224), tmp_path / "m.onnx")
    r = evaluate(tmp_path / "m.onnx", limit=96)
    assert r.data == "photos" and r.metric == "top1_agreement"
    assert r.value == 1.0 and r.extra["mean_kl"] < 1e-4 and r.extra["confident_views"] > 10
    assert 0 < r.extra["clear_views"] <= r.extra["confident_views"] and r.extra["clear_agreement"] == 1.0
    assert r.extra["disagreements"] == 0
    # a model that is not MobileNetV2 disagrees with it: the metric is not trivially 1
    import torchvision

    other = evaluate(torchvision.models.resnet18().eval(), data="photos", limit=40)
    assert other.value < 0.5 and np.isfinite(other.extra["mean_kl"])
    assert other.extra["disagreements"] == round(40 * (1 - other.value))
    assert 0 <= other.extra["disagreements_near_tie"] <= other.extra["disagreements"]


def test_reference_outputs_computed_once_give_the_same_figures_as_the_reference_model(tmp_path):
    import torchvision

    from deepseek.evaluation import load_eval_data, reference_outputs

    x = load_eval_data("photos", 24)[0].numpy()
    model = torchvision.models.resnet18(num_classes=10).eval()
    candidate = torchvision.models.resnet18(num_classes=10).eval()  # other random weights: some views disagree
    outputs = reference_outputs(model, x)
    assert outputs.shape == (24, 10)
    by_model = evaluate(candidate, data="photos", limit=24, reference=model)
    by_outputs = evaluate(candidate, data="photos", limit=24, reference=torch.from_numpy(outputs))
    assert by_outputs.value == by_model.value and by_outputs.extra["mean_kl"] == pytest.approx(by_model.extra["mean_kl"])
    assert by_outputs.extra["reference"] == "given outputs"
    # outputs of other data: refused, not zipped
    with pytest.raises(InvalidArgumentError, match=r"reference: outputs \(24, 10\) but the model outputs \(20, 10\)"):
        evaluate(candidate, data="photos", limit=20, reference=outputs)
    with pytest.raises(InvalidArgumentError, match=r"reference: got .an array of shape \[24\]"):
        evaluate(candidate, data="photos", limit=24, reference=outputs[:, 0])
    with pytest.raises(InvalidArgumentError, match=r"reference: got .an array of shape \[24, 10\].*data='digits'"):
        evaluate(candidate, data="digits", reference=outputs)
