"""Bad input to ``deepseek export`` / ``deepseek compile`` and their Python entry points: every case is refused
before any export or compile work — exit 2 (or an InvalidArgumentError / ArtifactError) with one line naming the
flag, argument or file; inputs unchanged; nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _refusals import refused
from deepseek._core.errors import ArtifactError, DeepSeekError, InvalidArgumentError
from deepseek.cli import _run


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A tiny .pt2, its state_dict, .npy calibration files good and bad, and corrupt model files of each format."""
    root = tmp_path_factory.mktemp("bad-compile")
    net = _net()
    torch.export.save(torch.export.export(net, (torch.randn(2, 8),)), root / "net.pt2")
    torch.save(net.state_dict(), root / "net.pth")
    rng = np.random.default_rng(0)
    np.save(root / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(root / "strings.npy", np.array(["a", "b"]))
    np.save(root / "empty.npy", np.zeros((0, 8), np.float32))
    np.save(root / "nan.npy", np.full((4, 8), np.nan, np.float32))
    np.save(root / "ids.npy", rng.integers(0, 100, (16, 8)))
    np.save(root / "shape.npy", rng.standard_normal((16, 5)).astype(np.float32))
    np.save(root / "good.npy", rng.standard_normal((16, 8)).astype(np.float32))
    data = (root / "net.pt2").read_bytes()
    (root / "empty.onnx").write_bytes(b"")
    (root / "random.onnx").write_bytes(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    shutil.copy(root / "net.pt2", root / "renamed.onnx")
    (root / "empty.pt2").write_bytes(b"")
    (root / "truncated.pt2").write_bytes(data[: len(data) // 2])
    (root / "text.pt2").write_text("not a model\n")
    (root / "random.pt").write_bytes(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    (root / "truncated.pth").write_bytes((root / "net.pth").read_bytes()[:200])
    shutil.copy(root / "net.pt2", root / "renamed.safetensors")
    (root / "empty.safetensors").write_bytes(b"")
    (root / "afile").write_text("x\n")
    (root / "taken.bundle").write_text("a file where an arm64 bundle folder would go\n")
    return root


# (command line with F = the fixture folder and O = the output folder, what the one-line error must name)
CLI_CASES = {
    "calib holding objects": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/objects.npy", "-o", "O/o.onnx"],
                              ["--calib"]),
    "calib of strings": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/strings.npy", "-o", "O/o.onnx"],
                         ["--calib"]),
    "empty calib": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/empty.npy", "-o", "O/o.onnx"],
                    ["--calib"]),
    "all-NaN calib": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/nan.npy", "-o", "O/o.onnx"],
                      ["--calib"]),
    "calib of the wrong shape": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/shape.npy", "-o",
                                  "O/o.onnx"], ["--calib"]),
    "integer calib for a float model": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/ids.npy", "-o",
                                         "O/o.onnx"], ["--calib"]),
    "photos for a non-image model": (["compile", "F/net.pt2", "--quantize", "int8", "-o", "O/o.onnx"], ["--calib"]),
    "arm64 calib of the wrong shape": (["compile", "F/net.pt2", "--target-arch", "arm64", "--quantize", "int8",
                                        "--calib", "F/shape.npy", "-o", "O/o.so"], ["--calib"]),
    "missing calib": (["compile", "F/net.pt2", "--quantize", "int8", "--calib", "F/nosuch.npy", "-o", "O/o.onnx"],
                      ["--calib"]),
    "calib with int8-dynamic": (["compile", "F/net.pt2", "--quantize", "int8-dynamic", "--calib", "F/good.npy", "-o",
                                 "O/o.onnx"], ["--calib"]),
    "calib without quantize": (["compile", "F/net.pt2", "--calib", "F/good.npy", "-o", "O/o.onnx"], ["--calib"]),
    "samples without quantize": (["compile", "F/net.pt2", "--samples", "8", "-o", "O/o.onnx"], ["--samples"]),
    "optimization level for executorch": (["compile", "F/net.pt2", "--target-arch", "arm64", "-O", "3", "-o",
                                           "O/o.so"], ["--optimization-level"]),
    "optimization level for inductor": (["compile", "F/net.pt2", "--backend", "inductor", "-O", "1", "-o", "O/o.pt2"],
                                        ["--optimization-level"]),
    "arch for a .pt2": (["compile", "F/net.pt2", "--arch", "torchvision:resnet18", "-o", "O/o.onnx"], ["--arch"]),
    "inputs for an ONNX model": (["compile", "F/random.onnx", "--inputs", "1x8", "-o", "O/o.onnx"], ["--inputs"]),
    "prune of 1.5": (["compile", "F/net.pt2", "--prune", "1.5", "-o", "O/o.onnx"], ["--prune"]),
    "prune of nan": (["compile", "F/net.pt2", "--prune", "nan", "-o", "O/o.onnx"], ["--prune"]),
    "bf16 without inductor": (["compile", "F/net.pt2", "--precision", "bf16", "-o", "O/o.onnx"], ["--precision"]),
    "tvm with int8": (["compile", "F/net.pt2", "--target-arch", "arm64", "--backend", "tvm", "--quantize", "int8",
                       "-o", "O/o.so"], ["--quantize"]),
    "backend of another target": (["compile", "F/net.pt2", "--target-arch", "x86_64", "--backend", "tvm", "-o",
                                   "O/o.onnx"], ["--backend"]),
    "output of the wrong kind": (["compile", "F/net.pt2", "-o", "O/o.so"], ["--output"]),
    "output is the input": (["compile", "F/net.pt2", "-o", "F/net.pt2"], ["--output"]),
    "output in /proc": (["compile", "F/net.pt2", "-o", "/proc/deepseek-nowhere/o.onnx"], ["--output"]),
    "output is a folder": (["compile", "F/net.pt2", "-o", "F"], ["--output"]),
    "arm64 bundle folder is a file": (["compile", "F/net.pt2", "--target-arch", "arm64", "-o", "F/taken.so"],
                                      ["--output"]),
    "export opset 999": (["export", "F/net.pt2", "--opset", "999", "-o", "O/o.onnx"], ["--opset"]),
    "export opset 0": (["export", "F/net.pt2", "--opset", "0", "-o", "O/o.onnx"], ["--opset"]),
    "export into /proc": (["export", "F/net.pt2", "-o", "/proc/x/o.onnx"], ["--output"]),
    "export over the input": (["export", "F/net.pt2", "-o", "F/net.pt2"], ["--output"]),
    "export to a non-.onnx": (["export", "F/net.pt2", "-o", "O/o.txt"], ["--output"]),
    "export arch for a .pt2": (["export", "F/net.pt2", "--arch", "torchvision:resnet18", "-o", "O/o.onnx"], ["--arch"]),
    "export of an ONNX file": (["export", "F/random.onnx", "-o", "O/o.onnx"], ["random.onnx"]),
    "export inputs the model refuses": (["export", "F/net.pt2", "--inputs", "1x5", "-o", "O/o.onnx"], ["--inputs"]),
    "inputs the model refuses": (["compile", "F/net.pt2", "--inputs", "1x5", "-o", "O/o.onnx"], ["--inputs"]),
    "inputs the model refuses, inductor": (["compile", "F/net.pt2", "--inputs", "2x5", "--backend", "inductor", "-o",
                                            "O/o.pt2"], ["--inputs"]),
}
CORRUPT = ["empty.onnx", "random.onnx", "renamed.onnx", "empty.pt2", "truncated.pt2", "text.pt2", "random.pt",
           "truncated.pth", "renamed.safetensors", "empty.safetensors"]


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_cli_input_is_one_line_before_any_work(case, files, tmp_path, capsys):
    argv, names = CLI_CASES[case]
    argv = [a.replace("F/", f"{files}/").replace("O/", f"{tmp_path}/") if a.startswith(("F/", "O/")) else
            str(files) if a == "F" else a for a in argv]
    refused(argv, capsys, *names, unchanged=files)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", CORRUPT)
@pytest.mark.parametrize("command", ["compile", "export", "deepseek-compile --trust-pickle"])
def test_a_corrupt_model_file_is_one_line_naming_it(name, command, files, tmp_path, capsys):
    extra = ["--arch", "torchvision:resnet18"] if name.endswith((".safetensors", ".pth")) else []
    if "trust" in command:
        extra.append("--trust-pickle")
    argv = [command.split()[0].replace("deepseek-compile", "compile"), str(files / name), *extra,
            "-o", str(tmp_path / "o.onnx")]
    line = refused(argv, capsys, name, unchanged=files)
    assert "expected" in line or "not a" in line
    assert not list(tmp_path.iterdir())


def test_pickles_stay_refused_without_trust(files, tmp_path):
    import deepseek

    path = tmp_path / "whole.pt"
    torch.save(_net(), path)
    with pytest.raises(ArtifactError, match="trust_pickle"):
        deepseek.load(path)


@pytest.mark.parametrize("name", CORRUPT)
def test_load_refuses_a_corrupt_file_naming_it(name, files):
    import deepseek

    with pytest.raises((ArtifactError, InvalidArgumentError)) as info:
        deepseek.load(files / name, arch="torchvision:resnet18", trust_pickle=True)
    assert name in str(info.value) and "\n" not in str(info.value)


# the Python entry points name their own arguments, never a flag
def test_library_errors_name_the_python_argument(files, tmp_path):
    import deepseek

    net = _net()
    cases = [
        (lambda: deepseek.compile(net, [(2, 8)], target_arch="riscv", output=str(tmp_path / "o.onnx")), "target_arch"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.so")), "output"),
        (lambda: deepseek.compile(net, [(2, 8)], output="/proc/x/o.onnx"), "output"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.onnx"), quantize="int8-dynamic",
                                  calib=str(files / "good.npy")), "calib"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.onnx"), quantize="int8",
                                  calib=str(files / "nan.npy")), "calib"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.onnx"), quantize="int8",
                                  calib=str(files / "shape.npy")), "calib"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.onnx"), samples=8), "samples"),
        (lambda: deepseek.compile(net, [(2, 8)], output=str(tmp_path / "o.onnx"), prune=2.0), "prune"),
        (lambda: deepseek.compile(net, None, output=str(tmp_path / "o.onnx")), "example_inputs"),
        (lambda: deepseek.compile(str(files / "net.pt2"), output=str(files / "net.pt2")), "output"),
        (lambda: deepseek.export_onnx(net, torch.randn(2, 8), tmp_path / "o.onnx", opset=999), "opset"),
        (lambda: deepseek.export_onnx(net, torch.randn(2, 8), "/proc/x/o.onnx"), "path"),
        (lambda: deepseek.export_onnx(net, torch.randn(2, 8), tmp_path, opset=18), "path"),
        (lambda: deepseek.export_onnx(net, torch.randn(2, 8), tmp_path / "o.onnx", atol=-1), "atol"),
        (lambda: deepseek.export_onnx(net, torch.randn(2, 8), tmp_path / "o.onnx", input_names="x"), "input_names"),
    ]
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        message = str(info.value)
        assert message.startswith(argument), (argument, message)
        assert "--" not in message.split(":")[0], message
    assert not list(tmp_path.iterdir())


def test_builders_check_their_output_first(files, tmp_path):
    from deepseek.compile import build_aoti, build_arm64

    net, x = _net(), (torch.randn(2, 8),)
    with pytest.raises(InvalidArgumentError, match=r"^output"):
        build_aoti(net, x, "/proc/deepseek-nowhere/o.pt2")
    with pytest.raises(InvalidArgumentError, match=r"^output"):
        build_arm64(net, x, files / "taken.so")  # its bundle folder would replace a file
    with pytest.raises(InvalidArgumentError, match=r"^examples"):
        build_arm64(net, (torch.zeros(2, 8, dtype=torch.long),), tmp_path / "m.so")
    assert not list(tmp_path.iterdir())


def test_export_reports_the_opset_it_wrote(tmp_path, capsys):
    """An opset the exporter cannot convert to is written as the exporter's own, and the user is told so."""
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(_net(), (torch.randn(2, 8),)), path)
    with pytest.warns(UserWarning, match="wrote opset 18, not the requested 7"):
        assert _run(["export", str(path), "--opset", "7", "--static-batch", "-o", str(tmp_path / "o.onnx")]) == 0
    assert "opset 18, not the requested 7" in capsys.readouterr().out
    import onnx

    assert onnx.load(str(tmp_path / "o.onnx")).opset_import[0].version == 18


def test_deepseek_errors_are_one_line(files, tmp_path):
    from deepseek.runtime.artifacts import detect_kind, load_onnx_model

    for name in CORRUPT:
        try:
            kind = detect_kind(files / name)
            if kind == "onnx":
                load_onnx_model(files / name)
        except DeepSeekError as exc:
            assert "\n" not in str(exc) and name in str(exc)
