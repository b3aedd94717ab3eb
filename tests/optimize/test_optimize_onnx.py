"""deepseek optimize for models whose outputs are not class scores, and for ONNX files without their PyTorch source:
a user metric over every output and labels.npy, the output-fidelity judge, and the refusal naming --metric."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import deepseek
from deepseek._core.errors import InvalidArgumentError

SIZE = 32

METRIC = textwrap.dedent('''
    import numpy as np

    def iou(outputs, labels):
        """Mean IoU of the thresholded map (output 0) with the label masks, halved with the presence score's accuracy
        (output 1): a metric over several outputs, as a detector's boxes and scores."""
        maps, presence = outputs
        found = maps[:, 0] > 0.5
        truth = labels > 0
        inter = (found & truth).sum((1, 2))
        union = (found | truth).sum((1, 2))
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean()
        return float(0.5 * iou + 0.5 * np.mean((presence[:, 0] > 0.02) == truth.any((1, 2))))

    def too_big(outputs, labels):
        return 2.0

    def broken(outputs, labels):
        raise KeyError("boxes")
''')


class BrightSpots(torch.nn.Module):
    """A small fully convolutional 'detector': a probability map of bright regions and a presence score."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 1, 1)
        with torch.no_grad():  # each channel a smoothed brightness detector at its own threshold, plus noise
            self.conv1.weight.copy_(torch.full((8, 1, 3, 3), 1 / 9) + 0.02 * torch.randn(8, 1, 3, 3, generator=g))
            self.conv1.bias.copy_(-torch.linspace(0.2, 0.6, 8))
            self.conv2.weight.copy_(0.05 * torch.randn(8, 8, 3, 3, generator=g))
            self.conv2.weight[:, :, 1, 1] += torch.eye(8)
            self.conv2.bias.zero_()
            self.head.weight.copy_(torch.full((1, 8, 1, 1), 6.0))
            self.head.bias.fill_(-1.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        prob = torch.sigmoid(self.head(h))
        return prob, prob.mean((2, 3))


def _images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.25, (count, 1, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((count, SIZE, SIZE), np.int64)
    for i in range(count):
        for _ in range(int(rng.integers(0, 3))):
            h, w = rng.integers(4, 12, 2)
            y0, x0 = rng.integers(0, SIZE - h), rng.integers(0, SIZE - w)
            x[i, 0, y0:y0 + h, x0:x0 + w] += rng.uniform(0.7, 1.0)
            masks[i, y0:y0 + h, x0:x0 + w] = 1
    return x, masks


@pytest.fixture(scope="module")
def spots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spots")
    model = BrightSpots().eval()
    onnx_path = root / "spots.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, SIZE, SIZE),), str(onnx_path), input_names=["image"],
                      output_names=["map", "presence"], dynamic_axes={"image": {0: "n"}, "map": {0: "n"},
                                                                        "presence": {0: "n"}}, dynamo=False)
    folder = root / "data"
    folder.mkdir()
    x, masks = _images(48, 0)
    np.save(folder / "inputs.npy", x)
    np.save(folder / "labels.npy", masks)
    np.save(folder / "calibration.npy", _images(32, 1)[0])
    metric = root / "spot_metric.py"
    metric.write_text(METRIC)
    return {"onnx": onnx_path, "data": folder, "metric": metric, "root": root}


def test_an_onnx_model_with_a_metric_gets_a_budgeted_artifact_and_a_recipe_that_replays(spots, tmp_path):
    out = tmp_path / "out"
    result = deepseek.optimize(str(spots["onnx"]), data=str(spots["data"]), metric=f"{spots['metric']}:iou",
                               max_accuracy_drop=1.0, trials=3, lowerings=("ort-fp32", "ort-int8"), output=out,
                               progress=False)
    assert result.judge.kind == "metric"
    reference = result.reference_accuracy
    assert 0.5 < reference <= 1.0  # the FP32 model does find the spots
    for c in result.candidates:
        assert not c.error, c.error
        assert c.scores["drop_pp"] == pytest.approx(100 * (reference - c.scores["metric"]))
        assert c.feasible == (c.scores["drop_pp"] <= 1.0 + 1e-9)
    assert result.baseline.scores["drop_pp"] == 0.0  # the file itself, in ONNX Runtime
    assert any(c.params["lowering"] == "ort-int8" for c in result.candidates)
    assert result.best.feasible and result.artifact.is_file()
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["judge"] == {"kind": "metric", "metric": f"{spots['metric']}:iou", "unit": "pp", "budget": 1.0}
    assert "spot_metric.py:iou" in (out / "report.md").read_text()
    import yaml

    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["onnx"]["lowering"] == result.best.params["lowering"]
    assert recipe["judge"]["metric"] == f"{spots['metric']}:iou"
    again = deepseek.optimize.replay(out / "recipe.yaml", output=tmp_path / "again", progress=False)
    assert again["drop_pp"] == pytest.approx(result.best.scores["drop_pp"], abs=1e-9)


def test_the_int8_graph_keeps_a_metric_model_close_and_names_its_layout(spots, tmp_path):
    from deepseek.quantization.onnx_graph import quantize_onnx_graph
    from deepseek.quantization.precision import choose_precision

    calibration = np.load(spots["data"] / "calibration.npy")
    built = quantize_onnx_graph(spots["onnx"], calibration, tmp_path / "q.onnx")
    assert built.int8_format == choose_precision().int8_format
    runner_fp32, runner_int8 = deepseek.load(spots["onnx"]), deepseek.load(built.path)
    x = np.load(spots["data"] / "inputs.npy")[:16]
    ref, got = runner_fp32.run(x), runner_int8.run(x)
    assert [o.dtype for o in got] == [np.float32, np.float32]  # outputs stay float
    # the decision the metric takes (map > 0.5) flips only on pixels whose FP32 value lies within the int8 error
    # of the threshold: few of them, as the spots are far brighter than the background
    near = np.abs(ref[0] - 0.5) <= np.abs(ref[0] - got[0])
    assert np.mean((ref[0] > 0.5) != (got[0] > 0.5)) <= max(near.mean(), 0.0)
    assert near.mean() < 0.05
    with pytest.raises(InvalidArgumentError, match=r"calibration.*inputs the model takes"):
        quantize_onnx_graph(spots["onnx"], np.zeros((4, 1, 8, 8), np.float32), tmp_path / "bad.onnx")


def test_a_non_class_output_without_a_metric_is_refused_naming_metric(spots, tmp_path):
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    np.save(unlabeled / "inputs.npy", np.load(spots["data"] / "inputs.npy"))
    with pytest.raises(InvalidArgumentError, match=r"model output.*\(N, classes\) logits.*--metric module:function"):
        deepseek.optimize(str(spots["onnx"]), data=str(unlabeled), trials=2, progress=False)
    # masks as labels without a metric: refused before the model is loaded, naming --metric too
    with pytest.raises(InvalidArgumentError, match=r"labels.npy.*class indices.*--metric"):
        deepseek.optimize(str(spots["onnx"]), data=str(spots["data"]), trials=2, progress=False)
    for data in (unlabeled, spots["data"]):
        done = subprocess.run([sys.executable, "-m", "deepseek", "optimize", str(spots["onnx"]), "--data", str(data),
                               "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--metric" in lines[0] and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_bad_metric_is_refused_with_its_reason(spots):
    common = dict(data=str(spots["data"]), trials=2, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"metric.*score in \[0, 1\].*returned 2.0"):
        deepseek.optimize(str(spots["onnx"]), metric=f"{spots['metric']}:too_big", **common)
    with pytest.raises(InvalidArgumentError, match=r"metric.*raised KeyError: 'boxes'"):
        deepseek.optimize(str(spots["onnx"]), metric=f"{spots['metric']}:broken", **common)
    with pytest.raises(InvalidArgumentError, match=r"metric.*has no function 'missing'"):
        deepseek.optimize(str(spots["onnx"]), metric=f"{spots['metric']}:missing", **common)
    with pytest.raises(InvalidArgumentError, match=r"metric.*module:function"):
        deepseek.optimize(str(spots["onnx"]), metric="no-colon", **common)
    with pytest.raises(InvalidArgumentError, match=r"metric.*nothing with judge 'fidelity'"):
        deepseek.optimize(str(spots["onnx"]), metric=f"{spots['metric']}:iou", judge="fidelity", **common)
    with pytest.raises(InvalidArgumentError, match=r"lowerings.*need the PyTorch model"):
        deepseek.optimize(str(spots["onnx"]), metric=f"{spots['metric']}:iou", lowerings=("inductor-fp32",), **common)


def test_a_pytorch_model_with_several_outputs_is_judged_by_fidelity_or_a_callable_metric(spots):
    model = BrightSpots().eval()
    example = (torch.zeros(1, 1, SIZE, SIZE),)
    result = deepseek.optimize(model, example, data=str(spots["data"]), judge="fidelity", min_sqnr_db=15.0,
                               trials=2, lowerings=("ort-fp32", "ort-int8"), progress=False)
    assert result.judge.kind == "fidelity"
    base, int8 = result.candidates[0], result.candidates[1]
    assert base.scores["sqnr_db"] > 100  # FP32 in ONNX Runtime against PyTorch: float rounding only
    assert len(int8.scores["outputs"]) == 2  # every output judged, the worst one decides
    assert int8.scores["sqnr_db"] == min(o["sqnr_db"] for o in int8.scores["outputs"])
    assert int8.feasible == (int8.scores["sqnr_db"] >= 15.0)
    assert int8.scores["drop"] == -int8.scores["sqnr_db"]

    import importlib.util

    loader = importlib.util.spec_from_file_location("spot_metric_callable", spots["metric"])
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    by_metric = deepseek.optimize(model, example, data=str(spots["data"]), metric=module.iou, trials=2,
                                  lowerings=("ort-fp32", "ort-int8"), progress=False)
    assert by_metric.judge.kind == "metric" and by_metric.judge.metric_name.endswith(":iou")
    assert by_metric.baseline.scores["drop_pp"] == pytest.approx(0.0, abs=1e-9)
