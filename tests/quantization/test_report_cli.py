import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from deepseek import assets
from deepseek.quantization import QATConfig, quantization_report
from deepseek.train import fit_classifier


class DigitNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = self.c1(x).relu()
        return self.fc(torch.nn.functional.max_pool2d(self.c2(x).relu(), 2).flatten(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    train, _ = assets.digits().split(0.2, seed=0)
    model = fit_classifier(DigitNet(), train, epochs=5)
    folder = tmp_path_factory.mktemp("qcli")
    torch.export.save(torch.export.export(model, (train.x[:2],)), folder / "m.pt2")
    np.save(folder / "calib.npy", train.x[:64].numpy())
    return model, train, folder


def test_report_ranks_layers_and_names_what_to_keep(trained, tmp_path, printed_table):
    model, train, _ = trained
    report = quantization_report(model, train.x[:64], QATConfig(weight_bits=3))
    assert {ly.name for ly in report.layers} == {"c1", "c2", "fc"}
    kls = [ly.kl for ly in report.layers]
    assert kls == sorted(kls, reverse=True)
    assert report.keep == [report.layers[0].name]  # the most sensitive layer (at least one is named)
    assert all(ly.weight_bits == 3 and ly.weight_sqnr_db > 5 for ly in report.layers)
    assert report.layers[0].activation_range[0] >= -1e-6  # digits pixels are in [0, 1]
    assert 0 < report.model_top1_agreement <= 1
    report.save_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["keep"] == report.keep
    printed_table(report.table(), "c1", "c2", "fc")
    report.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_writes_int8_model_and_report(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    np.save(tmp_path / "calib.npy", assets.photo_calibration_batch(8, size=64).numpy())
    proc = subprocess.run([sys.executable, "-m", "deepseek", "quantize", str(tmp_path / "r18.pth"), "--arch", "torchvision:resnet18",
                           "--calib", str(tmp_path / "calib.npy"), "--output", str(tmp_path / "q.onnx"),
                           "--report", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)

    assert proc.returncode == 0, proc.stderr
    assert "QuantizeLinear" in [n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node]
    assert (tmp_path / "rep" / "report.json").exists() and (tmp_path / "rep" / "report.png").exists()
    assert "keep in higher precision" in proc.stdout


@pytest.mark.parametrize("extra, word", [
    (["--keep-fp32", "many"], "--keep-fp32"), ([], "--output/--report"), (["--report", "r"], "flattened graphs"),
])
def test_cli_bad_input(trained, tmp_path, extra, word):
    _, _, folder = trained
    args = [sys.executable, "-m", "deepseek", "quantize", str(folder / "m.pt2")]
    if word != "--output/--report":
        args += ["--output", str(tmp_path / "q.onnx")]
    proc = subprocess.run(args + extra, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and word in proc.stderr and "Traceback" not in proc.stderr


def test_calibration_sources(tmp_path):
    import deepseek
    from deepseek.quantization.calibration_data import load_calibration

    assert load_calibration("photos", 4, None).shape == (4, 3, 224, 224)
    from PIL import Image

    for i in range(3):
        Image.fromarray(assets.real_photos()[i].image).save(tmp_path / f"{i}.jpg")
    assert load_calibration(str(tmp_path), 2, (1, 3, 96, 96)).shape == (2, 3, 96, 96)
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^calib"):
        load_calibration(str(tmp_path / "missing"), 4, None)


def test_quantize_model_is_the_command_from_python(tmp_path):
    """What `deepseek quantize` writes, as one library call; what it refuses names the Python argument."""
    import torchvision

    from deepseek import InvalidArgumentError
    from deepseek.quantization.workflow import quantize_model

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(InvalidArgumentError, match=r"^output: "):
        quantize_model(tmp_path / "r18.pth", arch="torchvision:resnet18")
    with pytest.raises(InvalidArgumentError, match=r"^keep_fp32: "):
        quantize_model(tmp_path / "r18.pth", arch="torchvision:resnet18", report=tmp_path / "rep", keep_fp32=2)
    with pytest.raises(InvalidArgumentError, match=r"^arch: "):
        quantize_model("resnet18", arch="torchvision:resnet18", output=tmp_path / "q.onnx")
    done = quantize_model(tmp_path / "r18.pth", arch="torchvision:resnet18", samples=16, inputs=[(1, 3, 32, 32)],
                          output=tmp_path / "q.onnx", min_agreement=0.05)  # 4 of 16 samples held out for the floor
    assert len(done.result.attempts) == 1  # random weights: a low floor, met by the first layout
    assert done.report is None and done.result.path == tmp_path / "q.onnx" and (tmp_path / "q.onnx").is_file()
    assert done.result.held_out is not None and done.summary()[-1] == done.result.summary()
