"""Bad input to ``deepseek optimize`` and its Python API: one line naming the flag (or argument), exit status 2,
inputs unchanged, nothing written; every case fails before a model is loaded or a candidate is built."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import deepseek
from _refusals import refused
from deepseek import InvalidArgumentError
from deepseek.optimize.data import make_judge

GOOD_RECIPE = {"deepseek_optimize_recipe": 1, "model": None, "inputs": [[1, 4]], "input_dtypes": ["float32"],
               "data": "digits", "compile": {"target_arch": "x86_64"},
               "measured": {"drop_pp": 0.1, "latency_ms": 0.2, "threads": 2}}


def _folder(tmp_path: Path, **arrays) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for name, array in arrays.items():
        if isinstance(array, bytes):
            (folder / f"{name}.npy").write_bytes(array)
        else:
            np.save(folder / f"{name}.npy", array, allow_pickle=True)
    return folder


def _recipe(tmp_path: Path, content) -> Path:
    path = tmp_path / "recipe.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


# -- --recipe --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "words"), [
    (os.urandom(64) + b"\xff\xfe", ["--recipe", "UTF-8"]),
    (b"", ["--recipe", "deepseek_optimize_recipe"]),
    ("inputs: [1, 2\n", ["--recipe", "valid YAML"]),
    ("- a\n- b\n", ["--recipe", "mapping"]),
    ({k: v for k, v in GOOD_RECIPE.items() if k != "inputs"}, ["--recipe", "'inputs'", "nothing"]),
    ({**GOOD_RECIPE, "inputs": 5}, ["--recipe", "'inputs'", "list"]),
    ({**GOOD_RECIPE, "inputs": [["a", 2]]}, ["'inputs'", "positive integers"]),
    ({**GOOD_RECIPE, "inputs": [[1, 4]], "input_dtypes": ["float99"]}, ["'input_dtypes'"]),
    ({**GOOD_RECIPE, "data": 7}, ["'data'", "string"]),
    ({**GOOD_RECIPE, "compile": "int8"}, ["'compile'", "mapping"]),
    ({**GOOD_RECIPE, "compile": {"target_arch": "tpu"}}, ["'compile'", "target"]),
    ({**GOOD_RECIPE, "compile": {"float_activations": 5}}, ["'compile'"]),
    ({**GOOD_RECIPE, "compile": {"nosuch": 1}}, ["'compile'", "nosuch"]),
    ({**GOOD_RECIPE, "measured": {"drop_pp": "small"}}, ["'measured.drop_pp'"]),
    ({**GOOD_RECIPE, "measured": {"threads": 0}}, ["'measured.threads'"]),
    ({**GOOD_RECIPE, "deepseek_optimize_recipe": "one"}, ["'deepseek_optimize_recipe'"]),
    ({**GOOD_RECIPE, "deepseek_optimize_recipe": 99}, ["'deepseek_optimize_recipe'"]),
    ({"deepseek_optimize_lm_recipe": 1, "data": "hamlet", "params": {"lowering": "torch-int3"}}, ["'params'"]),
    ({"deepseek_optimize_lm_recipe": 1, "data": "hamlet"}, ["'params'", "nothing"]),
    ({"deepseek_optimize_lm_recipe": 1, "data": "hamlet", "params": {"lowering": "torch-float", "compute": "float32"},
      "windows": "many"}, ["'windows'"]),
])
def test_a_bad_recipe_is_one_line_naming_the_file_and_field(tmp_path, capsys, content, words):
    recipe = _recipe(tmp_path, content)
    refused(["optimize", "--recipe", recipe, "--output", tmp_path / "out"], capsys, all_of=words, unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_missing_recipe_and_a_recipe_with_search_flags_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    refused(["optimize", "--recipe", tmp_path / "nope.yaml", "--output", out], capsys, "--recipe", unchanged=tmp_path)
    recipe = _recipe(tmp_path, GOOD_RECIPE)
    refused(["optimize", "--recipe", recipe, "--data", "digits", "--output", out], capsys, "--data", unchanged=tmp_path)
    # a recipe made from a Python object names no model: MODEL is needed
    refused(["optimize", "--recipe", recipe, "--output", out], capsys, "MODEL", unchanged=tmp_path)
    assert not out.exists()


def test_the_python_replay_names_the_recipe_file_and_field(tmp_path):
    recipe = _recipe(tmp_path, {k: v for k, v in GOOD_RECIPE.items() if k != "inputs"})
    with pytest.raises(InvalidArgumentError, match=r"^recipe \(.*recipe\.yaml\): field 'inputs'"):
        deepseek.optimize.replay(recipe, output=tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match=r"^recipe: .*UTF-8"):
        deepseek.optimize.replay(_recipe(tmp_path, b"\x80\x81\x82"), output=tmp_path / "out")
    good = _recipe(tmp_path, {**GOOD_RECIPE, "model": "nosuch-model"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(InvalidArgumentError, match=r"^output: .*new or empty folder"):
        deepseek.optimize.replay(good, output=tmp_path / "full")
    with pytest.raises(InvalidArgumentError, match=r"^output: .*different from the input"):
        deepseek.optimize.replay(good, output=good)
    assert not (tmp_path / "out").exists()


# -- --data DIR ------------------------------------------------------------------------------------------------
X = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)


@pytest.mark.parametrize(("arrays", "words"), [
    ({}, ["--data", "inputs.npy"]),
    ({"inputs": np.array([{"a": 1}] * 20, dtype=object)}, ["--data", "inputs.npy", "never unpickled"]),
    ({"inputs": np.array(["a", "b"] * 10)}, ["--data", "inputs.npy", "dtype"]),
    ({"inputs": np.zeros((0, 4), np.float32)}, ["--data", "inputs.npy", "empty"]),
    ({"inputs": np.where(np.arange(80).reshape(20, 4) == 5, np.nan, X)}, ["--data", "inputs.npy", "NaN"]),
    ({"inputs": np.full((20, 4), 1e300)}, ["--data", "inputs.npy", "NaN or infinite"]),  # overflows float32
    ({"inputs": np.float32(3.0)}, ["--data", "inputs.npy", "dimension"]),
    ({"inputs": b"not an npy file at all"}, ["--data", "inputs.npy"]),
    ({"inputs": X, "labels": np.arange(19)}, ["--data", "labels.npy", "(20,)"]),
    ({"inputs": X, "labels": -np.ones(20, np.int64)}, ["--data", "labels.npy", ">= 0"]),
    ({"inputs": X, "labels": np.zeros(20, np.float32)}, ["--data", "labels.npy", "integers"]),
    ({"inputs": X, "labels": np.zeros(20, bool)}, ["--data", "labels.npy"]),
    ({"inputs": X, "calibration": np.zeros((4, 5), np.float32)}, ["--data", "calibration.npy", "rows like"]),
    ({"inputs": X, "calibration": np.array([], np.float32)}, ["--data", "calibration.npy", "empty"]),
    ({"inputs": X[:8]}, ["--data", "at least 9 rows"]),
])
def test_a_bad_data_folder_is_one_line_naming_the_file(tmp_path, capsys, arrays, words):
    folder = _folder(tmp_path, **arrays)
    refused(["optimize", "mobilenetv2", "--data", folder, "--output", tmp_path / "out"], capsys, all_of=words,
            unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


def test_labels_beyond_the_models_classes_are_refused(tmp_path):
    folder = _folder(tmp_path, inputs=X, labels=np.full(20, 7, np.int64))
    model = torch.nn.Linear(4, 3).eval()
    with pytest.raises(InvalidArgumentError, match=r"^data: .*labels\.npy.*3 classes"):
        make_judge(model, (torch.zeros(1, 4),), str(folder), calib_samples=4)


# -- flags -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "word"), [
    (["--max-accuracy-drop", "-1"], "--max-accuracy-drop"), (["--max-accuracy-drop", "nan"], "--max-accuracy-drop"),
    (["--max-accuracy-drop", "inf"], "--max-accuracy-drop"), (["--max-accuracy-drop", "x"], "--max-accuracy-drop"),
    (["--trials", "0"], "--trials"), (["--trials", "2.5"], "--trials"),
    (["--prune", "1.5,abc"], "--prune"), (["--prune", "1.5"], "--prune"), (["--prune", "0"], "--prune"),
    (["--prune", "nan"], "--prune"), (["--prune", ""], "--prune"),
    (["--finetune-epochs", "-1"], "--finetune-epochs"), (["--target", "nosuch"], "--target"),
    (["--objective", "nosuch"], "--objective"), (["--lowerings", "tensorrt"], "--lowerings"),
    (["--lowerings", "xnnpack-int8"], "--lowerings"),  # an arm64 lowering for the x86_64 target
    (["--target", "arm64"], "--objective"),  # latency of arm64 code cannot be timed on this host
    (["--seed", "-1"], "--seed"), (["--calib-samples", "0"], "--calib-samples"),
    (["--inputs", "1xax3"], "--inputs"), (["--inputs", "1x0x3"], "--inputs"),
])
def test_a_bad_flag_is_refused_before_any_model_is_loaded(tmp_path, capsys, flags, word):
    if flags == ["--target", "arm64"] and __import__("platform").machine().lower() in ("aarch64", "arm64"):
        pytest.skip("an arm64 host times arm64 artifacts")
    refused(["optimize", "mobilenetv2", "--data", "digits", *flags, "--output", tmp_path / "out"], capsys, word,
            unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "word"), [
    (["--data", "digits"], "MODEL"), (["mobilenetv2"], "--data"), (["mobilenetv2", "--data", "imagenet"], "--data"),
])
def test_missing_model_or_data_is_refused(tmp_path, capsys, args, word):
    refused(["optimize", *args, "--output", tmp_path / "out"], capsys, word, unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_bad_output_is_refused_before_any_model_is_loaded(tmp_path, capsys):
    folder = _folder(tmp_path, inputs=X)
    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    base = ["optimize", "mobilenetv2", "--data", folder, "--output"]
    for output in (a_file, folder, full, a_file / "sub"):  # a file, the data folder itself, a full folder, under a file
        refused([*base, output], capsys, "--output", unchanged=tmp_path)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            refused([*base, locked / "out"], capsys, "--output", unchanged=tmp_path)
        finally:
            locked.chmod(0o700)
    assert a_file.read_text() == "mine" and (full / "keep.txt").read_text() == "keep"


def test_a_language_model_refuses_what_it_cannot_use(tmp_path, capsys):
    out = tmp_path / "out"
    binary = tmp_path / "text.txt"
    binary.write_bytes(b"\x00\xff\xfe" * 50)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    for args, word in ((["--data", "hamlet", "--prune", "0.5"], "--prune"),
                       (["--data", "hamlet", "--target", "cuda"], "--target"),
                       (["--data", "hamlet", "--seed", "3"], "--seed"),  # set, but a language model search has none
                       (["--data", "hamlet", "--finetune-epochs", "2"], "--finetune-epochs"),
                       (["--data", "hamlet", "--calib-samples", "16"], "--calib-samples"),
                       (["--data", "photos"], "--data"), (["--data", binary], "--data"), (["--data", empty], "--data")):
        refused(["optimize", "smollm2", *args, "--output", out], capsys, word, unchanged=tmp_path)
    hf = tmp_path / "hf"
    hf.mkdir()
    for config, word in (("{not json", "MODEL"), ('{"model_type": 5}', "'model_type'")):
        (hf / "config.json").write_text(config)
        refused(["optimize", hf, "--data", "hamlet", "--output", out], capsys, word, unchanged=tmp_path)
    assert not out.exists()


# -- the Python API names the Python argument --------------------------------------------------------------------
@pytest.mark.parametrize(("options", "match"), [
    ({"max_accuracy_drop": float("nan")}, "^max_accuracy_drop: "), ({"max_accuracy_drop": -1}, "^max_accuracy_drop: "),
    ({"trials": 0}, "^trials: "), ({"target": "tpu"}, "^target: "), ({"objective": "speed"}, "^objective: "),
    ({"prune_ratios": (1.5,)}, "^prune_ratios: "), ({"finetune_epochs": -1}, "^finetune_epochs: "),
    ({"lowerings": ("tensorrt",)}, "^lowerings: "), ({"lowerings": "ort-fp32"}, "^lowerings: "),
    ({"seed": -3}, "^seed: "), ({"data": "imagenet"}, "^data: "), ({"nosuch": 1}, "^options: "),
    ({"progress": "yes"}, "^progress: "),
])
def test_the_python_api_names_the_python_argument(tmp_path, options, match):
    model = torch.nn.Linear(4, 3).eval()
    options = {"data": "digits", **options}
    with pytest.raises(InvalidArgumentError, match=match):
        deepseek.optimize(model, (torch.zeros(1, 4),), output=tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_the_python_api_refuses_a_bad_output_before_loading_the_data(tmp_path):
    model = torch.nn.Linear(4, 3).eval()
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(InvalidArgumentError, match=r"^output: .*folder"):
        deepseek.optimize(model, (torch.zeros(1, 4),), data="digits", output=taken)
    with pytest.raises(InvalidArgumentError, match=r"^example_inputs: "):
        deepseek.optimize("mobilenetv2", ["a"], data="digits")
    assert taken.read_text() == "mine"
