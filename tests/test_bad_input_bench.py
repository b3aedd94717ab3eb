"""Bad input to ``deepseek bench``/``profile``/``evaluate``/``doctor``/``demo`` and their Python forms: every case is
refused in one line naming the flag (CLI) or the Python argument (library), before any measuring, with the inputs
unchanged and no output written. Also: each public function of the package stays that function whatever is
imported (a submodule of the same name must not shadow it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _refusals import leaves_unchanged, refused
from deepseek.cli import _run


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A valid tiny ONNX model, corrupt model files and a sub-folder."""
    import onnx
    from onnx import TensorProto, helper

    root = tmp_path_factory.mktemp("bad-input-bench")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    onnx.save(helper.make_model(graph), root / "m.onnx")
    data = (root / "m.onnx").read_bytes()
    (root / "empty.onnx").write_bytes(b"")
    (root / "random.onnx").write_bytes(bytes(range(256)) * 8)
    (root / "truncated.onnx").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(root / "junk.pt2", "w") as zf:
        zf.writestr("junk/data.bin", os.urandom(64))
    (root / "junk.pt").write_bytes(b"\x80\x02not a pickle" + bytes(64))
    (root / "sub").mkdir()
    return root


CLI_CASES = [
    # outputs that would overwrite an input, go into a folder, or collide
    (["bench", "--model", "m.onnx", "--json", "m.onnx"], "--json"),
    (["bench", "--model", "m.onnx", "--plot", "m.onnx"], "--plot"),
    (["bench", "--model", "m.onnx", "--json", "sub"], "--json"),
    (["bench", "--model", "m.onnx", "--json", "r.out", "--plot", "r.out"], "--plot"),
    (["profile", "m.onnx", "--png", "m.onnx"], "--png"),
    (["profile", "m.onnx", "--json", "m.onnx"], "--json"),
    (["profile", "m.onnx", "--json", "sub"], "--json"),
    (["evaluate", "--model", "m.onnx", "--json", "m.onnx"], "--json"),
    (["evaluate", "--model", "m.onnx", "--json", "sub"], "--json"),
    (["doctor", "--fast", "--output", "sub"], "--output"),
    (["doctor", "--fast", "--output", "m.onnx/report.json"], "--output"),
    (["demo", "--output", "m.onnx"], "--output"),
    # numbers and lists
    (["bench", "--model", "m.onnx", "--batch-size", "0"], "--batch-size"),
    (["bench", "--model", "m.onnx", "--batch-size", "-1"], "--batch-size"),
    (["bench", "--model", "m.onnx", "--batch-size", "abc"], "--batch-size"),
    (["bench", "--model", "m.onnx", "--batch-size", "1,0"], "--batch-size"),
    (["bench", "--model", "m.onnx", "--runs", "0"], "--runs"),
    (["bench", "--model", "m.onnx", "--runs", "many"], "--runs"),
    (["bench", "--model", "m.onnx", "--warmup", "-1"], "--warmup"),
    (["bench", "--model", "m.onnx", "--threads", "0"], "--threads"),
    (["bench", "--model", "m.onnx", "--new-tokens", "0"], "--new-tokens"),
    (["bench", "--model", "m.onnx", "--backends", "nosuch"], "--backends"),
    (["bench", "--model", "m.onnx", "--backends", ","], "--backends"),
    (["bench", "--model", "m.onnx", "--backends", "eager,torch"], "--backends"),
    (["bench", "--model", "m.onnx", "--baseline", "nosuch"], "--baseline"),
    (["bench", "--model", "m.onnx", "--backends", "onnxruntime", "--baseline", "eager"], "--baseline"),
    (["bench", "--model", "m.onnx", "--inputs", "0x3"], "--inputs"),
    (["bench", "--model", "m.onnx", "--inputs", "axb"], "--inputs"),
    (["bench", "--model", "m.onnx", "--device", "tensorrt"], "--device"),
    (["bench", "--model", "m.onnx", "--device", "tpu"], "--device"),
    (["bench", "--model", "nosuch"], "--model"),
    (["bench", "--model", "sub"], "--model"),
    (["profile", "m.onnx", "--backend", "eager"], "--backend"),
    (["profile", "m.onnx", "--backend", "nosuch"], "--backend"),
    (["profile", "m.onnx", "--batch-size", "0"], "--batch-size"),
    (["profile", "m.onnx", "--runs", "0"], "--runs"),
    (["profile", "m.onnx", "--warmup", "-1"], "--warmup"),
    (["profile", "m.onnx", "--top", "0"], "--top"),
    (["profile", "m.onnx", "--inputs", "0x3"], "--inputs"),
    (["profile", "m.onnx", "--inputs", "2x64,1x3"], "--inputs"),
    (["profile", "nosuch"], "MODEL"),
    (["evaluate", "--model", "m.onnx", "--min-accuracy", "2"], "--min-accuracy"),
    (["evaluate", "--model", "m.onnx", "--min-accuracy", "nan"], "--min-accuracy"),
    (["evaluate", "--model", "m.onnx", "--min-accuracy", "0"], "--min-accuracy"),
    (["evaluate", "--model", "m.onnx", "--min-accuracy", "-0.5"], "--min-accuracy"),
    (["evaluate", "--model", "m.onnx", "--data", "nosuch"], "--data"),
    (["evaluate", "--model", "m.onnx", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "--model", "m.onnx", "--limit", "0"], "--limit"),
    (["evaluate", "--model", "m.onnx", "--backend", "nosuch"], "--backend"),
    (["evaluate", "--model", "m.onnx", "--backend", "eager"], "--backend"),
    (["evaluate", "--model", "m.onnx", "--data", "digits", "--reference", "m.onnx"], "--reference"),
    (["evaluate", "--model", "m.onnx", "--data", "photos", "--reference", "nosuch.onnx"], "--reference"),
    (["evaluate", "--model", "m.onnx", "--data", "photos", "--reference", "empty.onnx"], "--reference"),
    (["evaluate", "--model", "nosuch.onnx"], "--model"),
    (["demo", "--runs", "0"], "--runs"),
    (["demo", "--cnn-epochs", "0"], "--cnn-epochs"),
]


@pytest.mark.parametrize(("argv", "flag"), CLI_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_cli_bad_input_is_one_line_naming_the_flag(argv, flag, folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    refused(argv, capsys, flag, unchanged=folder)


@pytest.mark.parametrize("bad", ["empty.onnx", "random.onnx", "truncated.onnx", "junk.pt2", "junk.pt"])
@pytest.mark.parametrize("command", [["bench", "--model"], ["profile"], ["evaluate", "--model"]],
                         ids=lambda c: c[0])
def test_a_corrupt_model_is_one_line_naming_the_file(command, bad, folder, capsys, monkeypatch):
    extra = ["--arch", "torchvision:resnet18"] if bad.endswith(".pt") and command[0] == "evaluate" else []
    monkeypatch.chdir(folder)
    refused([*command, bad, *extra], capsys, bad, unchanged=folder)


def test_profile_without_backend_picks_the_files_runtime(folder, capsys, monkeypatch):
    """``deepseek profile m.onnx`` (no --backend) profiles on ONNX Runtime, not 'eager' it would then refuse."""
    monkeypatch.chdir(folder)
    assert _run(["profile", "m.onnx", "--runs", "1", "--top", "3"]) == 0
    captured = capsys.readouterr()
    assert "--backend" not in captured.err and "onnxruntime" in captured.out


# ---- the Python API: errors name the Python argument, never a CLI flag ----------------------------------------

def _api_cases(root: Path):
    import numpy as np
    import torch

    import deepseek
    from deepseek.bench import BenchmarkResult
    from deepseek.bench.doctor import Report
    from deepseek.bench.profile import ProfileResult
    from deepseek.demo import run_demo
    from deepseek.evaluation import EvaluationResult

    m = str(root / "m.onnx")
    result = BenchmarkResult(model={"name": "m.onnx", "file": m}, baseline="onnxruntime", rows=[], machine={})
    prof = ProfileResult("m.onnx", "onnxruntime", 1, 1, 0.0, [], [], file=m)
    ev = EvaluationResult(m, "digits", "accuracy", 1.0, 1, "onnxruntime", 0.1, 1.0, {})
    return [
        ("batch_sizes", lambda: deepseek.benchmark(m, batch_sizes=[0])),
        ("batch_sizes", lambda: deepseek.benchmark(m, batch_sizes=[True])),
        ("runs", lambda: deepseek.benchmark(m, runs=0)),
        ("warmup", lambda: deepseek.benchmark(m, warmup=-1)),
        ("threads", lambda: deepseek.benchmark(m, threads=0)),
        ("new_tokens", lambda: deepseek.benchmark(m, new_tokens=0)),
        ("backends", lambda: deepseek.benchmark(m, backends=["nosuch"])),
        ("backends", lambda: deepseek.benchmark(m, backends=[])),
        ("backends", lambda: deepseek.benchmark(m, backends=5)),
        ("baseline", lambda: deepseek.benchmark(m, backends=["onnxruntime"], baseline="eager")),
        ("device", lambda: deepseek.benchmark(m, device="tpu")),
        ("device", lambda: deepseek.benchmark(m, device="tensorrt")),
        ("model", lambda: deepseek.benchmark("nosuch")),
        ("model", lambda: deepseek.benchmark(42)),
        ("model", lambda: deepseek.benchmark(str(root / "random.onnx"))),
        ("inputs", lambda: deepseek.benchmark(torch.nn.Linear(4, 2), torch.zeros(1, 3))),
        ("inputs", lambda: deepseek.benchmark(m, np.zeros((1, 3), np.float32))),
        ("inputs", lambda: deepseek.profile(torch.nn.Linear(4, 2), torch.zeros(1, 3))),
        ("backend", lambda: deepseek.profile(m, backend="eager")),
        ("backend", lambda: deepseek.profile(m, backend="nosuch")),
        ("batch_size", lambda: deepseek.profile(m, batch_size=0)),
        ("runs", lambda: deepseek.profile(m, runs=0)),
        ("warmup", lambda: deepseek.profile(m, warmup=-2)),
        ("model", lambda: deepseek.profile(str(root / "truncated.onnx"))),
        ("min_accuracy", lambda: deepseek.evaluate(m, min_accuracy=float("nan"))),
        ("min_accuracy", lambda: deepseek.evaluate(m, min_accuracy=1.5)),
        ("min_accuracy", lambda: deepseek.evaluate(m, min_accuracy="0.9")),
        ("batch_size", lambda: deepseek.evaluate(m, batch_size=0)),
        ("limit", lambda: deepseek.evaluate(m, limit=0)),
        ("data", lambda: deepseek.evaluate(m, data="nosuch")),
        ("reference", lambda: deepseek.evaluate(m, data="digits", reference=m)),
        ("model", lambda: deepseek.evaluate(str(root / "empty.onnx"))),
        ("compile_timeout", lambda: deepseek.doctor(compile_timeout=0)),
        ("compile_timeout", lambda: deepseek.doctor(compile_timeout=float("nan"))),
        ("output", lambda: run_demo(m)),
        ("runs", lambda: run_demo(str(root / "demo-out"), runs=0)),
        ("batch_sizes", lambda: run_demo(str(root / "demo-out"), batch_sizes=())),
        ("path", lambda: result.save_json(m)),
        ("path", lambda: result.plot(m)),
        ("path", lambda: result.save_json(root / "sub")),
        ("path", lambda: prof.save_json(m)),
        ("path", lambda: prof.plot(root / "sub")),
        ("path", lambda: ev.save_json(m)),
        ("path", lambda: Report([], {}).save_json(root / "sub")),
    ]


def test_python_api_bad_input_names_the_argument(folder):
    from deepseek import DeepSeekError

    with leaves_unchanged(folder):
        for argument, call in _api_cases(folder):
            with pytest.raises(DeepSeekError) as info:
                call()
            message = str(info.value)
            assert message.startswith(argument), (argument, message)
            assert "--" not in message.split(":")[0], message


# ---- deepseek.<function> stays the function whatever is imported ----------------------------------------------

_SHADOW_CHECK = r"""
import importlib, importlib.util, json, pkgutil, types
import deepseek

# importing a submodule binds it on its parent package only, so the names at risk are each package's public
# names that are also the names of its own submodules: import exactly those, then look at the names again
bad, skipped, checked = [], [], []
packages = ["deepseek"] + [i.name for i in pkgutil.walk_packages(deepseek.__path__, "deepseek.") if i.ispkg]
for package_name in packages:
    try:
        package = importlib.import_module(package_name)
    except ImportError as exc:  # an optional dependency is missing
        skipped.append(f"{package_name}: {exc}")
        continue
    public = getattr(package, "__all__", None) or [n for n in dir(package) if not n.startswith("_")]
    children = {i.name for i in pkgutil.iter_modules(package.__path__)}
    for name in sorted(set(public) & children):
        before = getattr(package, name)
        if isinstance(before, types.ModuleType):
            continue  # the public name is the submodule itself
        try:
            importlib.import_module(f"{package_name}.{name}")
        except ImportError as exc:
            skipped.append(f"{package_name}.{name}: {exc}")
            continue
        checked.append(f"{package_name}.{name}")
        after = getattr(package, name)
        if after is not before:
            bad.append(f"{package_name}.{name} became {after!r} after importing the submodule {package_name}.{name}")
print(json.dumps({"bad": bad, "skipped": skipped, "checked": checked}))
"""


def test_public_functions_are_not_shadowed_by_submodules():
    """Importing a submodule named like its package's public function (``deepseek.optimize.replay``,
    ``deepseek.bench.benchmark``) must leave the package's name the function."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _SHADOW_CHECK], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["bad"], report
    assert {"deepseek.optimize.replay", "deepseek.bench.benchmark"} <= set(report["checked"]), report  # cases reached


def test_evaluate_is_callable_after_a_failed_optimize(folder):
    import deepseek

    with pytest.raises(Exception):  # noqa: B017 — any failure: what matters is the state it leaves
        deepseek.optimize(str(folder / "random.onnx"))
    import deepseek.bench.doctor  # the module behind `deepseek doctor`

    assert callable(deepseek.evaluate) and deepseek.evaluate.__module__ == "deepseek.evaluation"
    assert callable(deepseek.doctor) and deepseek.doctor.__name__ == "doctor"
