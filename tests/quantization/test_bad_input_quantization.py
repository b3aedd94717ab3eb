"""Bad input to ``deepseek quantize`` and the quantization entry points: each case is refused before any
calibration, export or quantization work — exit 2 (or an InvalidArgumentError / ArtifactError) with one line
naming the flag or argument; inputs unchanged; nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _refusals import leaves_unchanged, refused
from deepseek._core.errors import ArtifactError, InvalidArgumentError


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 10)).eval()


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-quantize")
    torch.save(_cnn(), root / "cnn.pt")  # a whole pickled module: loaded only with --trust-pickle
    torch.export.save(torch.export.export(_cnn(), (torch.randn(1, 3, 8, 8),)), root / "cnn.pt2")
    rng = np.random.default_rng(0)
    np.save(root / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(root / "strings.npy", np.array(["a", "b"]))
    np.save(root / "empty.npy", np.zeros((0, 3, 8, 8), np.float32))
    np.save(root / "nan.npy", np.full((4, 3, 8, 8), np.nan, np.float32))
    np.save(root / "scalar.npy", np.float32(1.0))
    np.save(root / "shape.npy", rng.standard_normal((8, 5)).astype(np.float32))
    np.save(root / "good.npy", rng.standard_normal((8, 3, 8, 8)).astype(np.float32))
    (root / "afile").write_text("x\n")
    (root / "random.onnx").write_bytes(rng.integers(0, 256, 1024, dtype=np.uint8).tobytes())
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(root / "mm.onnx"))
    return root


MODEL = ["F/cnn.pt", "--trust-pickle"]
CLI_CASES = {
    "calib holding objects": ([*MODEL, "--calib", "F/objects.npy", "-o", "O/q.onnx"], ["--calib"]),
    "calib of strings": ([*MODEL, "--calib", "F/strings.npy", "-o", "O/q.onnx"], ["--calib"]),
    "empty calib": ([*MODEL, "--calib", "F/empty.npy", "-o", "O/q.onnx"], ["--calib"]),
    "all-NaN calib": ([*MODEL, "--calib", "F/nan.npy", "-o", "O/q.onnx"], ["--calib"]),
    "scalar calib": ([*MODEL, "--calib", "F/scalar.npy", "-o", "O/q.onnx"], ["--calib"]),
    "missing calib": ([*MODEL, "--calib", "F/nosuch.npy", "-o", "O/q.onnx"], ["--calib"]),
    "a calib that is a text file": ([*MODEL, "--calib", "F/afile", "-o", "O/q.onnx"], ["--calib"]),
    "calib unlike --inputs": ([*MODEL, "--inputs", "1x3x8x8", "--calib", "F/shape.npy", "-o", "O/q.onnx"],
                              ["--calib"]),
    "calib the model cannot run": ([*MODEL, "--calib", "F/shape.npy", "-o", "O/q.onnx"], ["--calib"]),
    "calib the model cannot run, report": ([*MODEL, "--calib", "F/shape.npy", "--report", "O/rep"], ["--calib"]),
    "photos for a small-input model": ([*MODEL, "--inputs", "1x3x8x9", "-o", "O/q.onnx"], ["--calib"]),
    "report is an existing file": ([*MODEL, "--calib", "F/good.npy", "--report", "F/afile"], ["--report"]),
    "report is the input": ([*MODEL, "--calib", "F/good.npy", "--report", "F/cnn.pt"], ["--report"]),
    "report in /proc": ([*MODEL, "--calib", "F/good.npy", "--report", "/proc/deepseek-nowhere/r"], ["--report"]),
    "output is the input": ([*MODEL, "--calib", "F/good.npy", "-o", "F/cnn.pt"], ["--output"]),
    "output is the calib": ([*MODEL, "--calib", "F/good.npy", "-o", "F/good.npy"], ["--output"]),
    "output in /proc": ([*MODEL, "--calib", "F/good.npy", "-o", "/proc/deepseek-nowhere/q.onnx"], ["--output"]),
    "output is a folder": ([*MODEL, "--calib", "F/good.npy", "-o", "F"], ["--output"]),
    "output not .onnx": ([*MODEL, "--calib", "F/good.npy", "-o", "O/q.txt"], ["--output"]),
    "output and report the same": ([*MODEL, "--calib", "F/good.npy", "-o", "O/x.onnx", "--report", "O/x.onnx"],
                                   ["--output", "--report"]),
    "no output at all": ([*MODEL, "--calib", "F/good.npy"], ["--output"]),
    "keep-fp32 without output": ([*MODEL, "--calib", "F/good.npy", "--report", "O/rep", "--keep-fp32", "2"],
                                 ["--keep-fp32"]),
    "calibration-method without output": ([*MODEL, "--calib", "F/good.npy", "--report", "O/rep",
                                           "--calibration-method", "minmax"], ["--calibration-method"]),
    "keep-fp32 negative": ([*MODEL, "--keep-fp32", "-1", "-o", "O/q.onnx"], ["--keep-fp32"]),
    "keep-fp32 not a count": ([*MODEL, "--keep-fp32", "some", "-o", "O/q.onnx"], ["--keep-fp32"]),
    "samples 0": ([*MODEL, "--samples", "0", "-o", "O/q.onnx"], ["--samples"]),
    "arch for a pickled module": ([*MODEL, "--arch", "torchvision:resnet18", "-o", "O/q.onnx"], ["--arch"]),
    "a .pt2 model": (["F/cnn.pt2", "-o", "O/q.onnx"], ["cnn.pt2"]),
    "a pickle without trust": (["F/cnn.pt", "--calib", "F/good.npy", "-o", "O/q.onnx"], ["cnn.pt"]),
    "a corrupt ONNX model": (["F/random.onnx", "-o", "O/q.onnx"], ["random.onnx"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_quantize_input_is_one_line_before_any_work(case, files, tmp_path, capsys):
    argv, names = CLI_CASES[case]
    argv = ["quantize", *(a.replace("F/", f"{files}/").replace("O/", f"{tmp_path}/") if a.startswith(("F/", "O/"))
                          else str(files) if a == "F" else a for a in argv)]
    refused(argv, capsys, *names, unchanged=files)
    assert not list(tmp_path.iterdir())


def _library_cases(files: Path, out: Path):
    from deepseek.quantization import (
        DynamicQuantizer,
        QATConfig,
        WeightOnlyConfig,
        quantize_pt2e,
        quantize_static_onnx,
        quantize_weights,
    )
    from deepseek.quantization.calibration_data import load_calibration
    from deepseek.quantization.mixed_precision import MixedPrecisionConfig
    from deepseek.quantization.onnx_dynamic import quantize_dynamic_onnx

    x = torch.randn(8, 3, 8, 8)
    return [
        ("layer_bits", lambda: quantize_weights(_mlp(), layer_bits={"nosuch": 8})),
        ("layer_bits", lambda: quantize_weights(_mlp(), layer_bits={"re:[": 8})),
        ("skip", lambda: quantize_weights(_mlp(), skip=["re:["])),
        ("skip", lambda: quantize_weights(_mlp(), skip="lm_head")),
        ("layer_bits['0']", lambda: WeightOnlyConfig(layer_bits={"0": 5})),
        ("group_size", lambda: WeightOnlyConfig(group_size=48)),
        ("group_size", lambda: WeightOnlyConfig(group_size=True)),
        ("bits", lambda: WeightOnlyConfig(bits=3)),
        ("min_features", lambda: WeightOnlyConfig(min_features=0)),
        ("skip", lambda: QATConfig(skip=["re:("])),
        ("layer_bits", lambda: QATConfig(layer_bits={"nosuch": 4}).apply(_cnn())),
        ("skip", lambda: QATConfig(skip=["Conv3d"]).apply(_cnn())),
        ("weight_bits", lambda: QATConfig(weight_bits=9)),
        ("skip", lambda: MixedPrecisionConfig(skip=["re:["])),
        ("output", lambda: quantize_static_onnx(_cnn(), x, "/proc/deepseek-nowhere/q.onnx")),
        ("output", lambda: quantize_static_onnx(_cnn(), x, out / "q.txt")),
        ("output", lambda: quantize_static_onnx(_cnn(), x, out)),
        ("exclude", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", exclude=["nosuch"])),
        ("calibration[0]", lambda: quantize_static_onnx(_cnn(), torch.full((4, 3, 8, 8), float("nan")), out / "q.onnx")),
        ("calibration", lambda: quantize_static_onnx(_cnn(), [], out / "q.onnx")),
        ("calibration", lambda: quantize_static_onnx(_cnn(), "photos", out / "q.onnx")),
        ("calibration", lambda: quantize_static_onnx(_cnn(), torch.randn(4, 5), out / "q.onnx")),
        ("percentile", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", percentile=101)),
        ("percentile", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", percentile="99")),
        ("target_agreement", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", target_agreement=0)),
        ("per_channel", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", per_channel="yes")),
        ("keep_fp32", lambda: quantize_static_onnx(_cnn(), x, out / "q.onnx", keep_fp32=-1)),
        ("model", lambda: quantize_static_onnx("cnn.pt", x, out / "q.onnx")),
        ("source", lambda: quantize_dynamic_onnx(files / "nosuch.onnx", out / "q.onnx")),
        ("source", lambda: quantize_dynamic_onnx(files / "random.onnx", out / "q.onnx")),
        ("output", lambda: quantize_dynamic_onnx(files / "mm.onnx", files / "mm.onnx")),
        ("output", lambda: quantize_dynamic_onnx(files / "mm.onnx", "/proc/deepseek-nowhere/q.onnx")),
        ("exclude", lambda: quantize_dynamic_onnx(files / "mm.onnx", out / "q.onnx", exclude=["nosuch"])),
        ("op_types", lambda: quantize_dynamic_onnx(files / "mm.onnx", out / "q.onnx", op_types=[])),
        ("reduce_range", lambda: quantize_dynamic_onnx(files / "mm.onnx", out / "q.onnx", reduce_range="no")),
        ("exclude", lambda: quantize_pt2e(_cnn(), x[:1], [x], exclude=["nosuch"])),
        ("exclude", lambda: quantize_pt2e(_cnn(), x[:1], [x], exclude="nosuch")),
        ("max_batches", lambda: quantize_pt2e(_cnn(), x[:1], [x], max_batches=0)),
        ("names", lambda: DynamicQuantizer(_mlp(), example_inputs=torch.randn(2, 64)).layer_sensitivity(["nosuch"])),
        ("calibration", lambda: DynamicQuantizer(_mlp(), example_inputs=torch.randn(2, 64)).quantize(
            "dynamic", calibration=[torch.randn(2, 64)])),
        ("quant_bits", lambda: DynamicQuantizer(_mlp(), quant_bits=3)),
        ("model_path", lambda: DynamicQuantizer(str(files / "nosuch.pt"))),
        ("model", lambda: DynamicQuantizer(str(files / "random.onnx"))),
        ("calib", lambda: load_calibration(str(files / "objects.npy"), 4, None)),
        ("calib", lambda: load_calibration(str(files / "nan.npy"), 4, None)),
        ("calib", lambda: load_calibration(str(files / "good.npy"), 4, (1, 3, 16, 16))),
        ("samples", lambda: load_calibration("photos", 0, None)),
    ]


def test_library_errors_name_the_argument(files, tmp_path):
    with leaves_unchanged(files):
        for argument, call in _library_cases(files, tmp_path):
            with pytest.raises((InvalidArgumentError, ArtifactError)) as info:
                call()
            message = str(info.value)
            assert message.startswith(argument), (argument, message)
            assert "\n" not in message and not message.startswith("--"), message
    assert not list(tmp_path.iterdir())


def test_a_selector_that_matches_nothing_lists_real_layers():
    from deepseek.quantization import quantize_weights

    with pytest.raises(InvalidArgumentError, match=r"layer_bits: got 'nosuch'.*layers: 0, 2"):
        quantize_weights(_mlp(), layer_bits={"nosuch": 8})
    model = _mlp()
    quantize_weights(model, bits=8, group_size=None, layer_bits={"re:[0-9]": 8}, skip="2")  # real names still work
    assert type(model[2]) is torch.nn.Linear and type(model[0]) is not torch.nn.Linear
