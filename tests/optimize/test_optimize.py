"""deepseek optimize on a real trained model (a CNN on scikit-learn's digits): candidates built by the compile
pipeline, scored on held-out digits, timed in their own processes; the outputs; exact replay; clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

import deepseek
from deepseek import assets
from deepseek._core.errors import InvalidArgumentError
from deepseek.compile.pipeline import CompileRecipe
from deepseek.optimize import OptimizeConfig, replay
from deepseek.optimize.data import make_judge
from deepseek.optimize.report import write_recipe
from deepseek.optimize.search import describe, measure_candidate, params_of, recipe_for, searched_lowerings


@pytest.fixture(scope="module")
def searched(digits_cnn, tmp_path_factory):
    out = tmp_path_factory.mktemp("opt") / "out"
    result = deepseek.optimize(digits_cnn, (torch.randn(1, 1, 8, 8),), data="digits", max_accuracy_drop=1.0, trials=5,
                               lowerings=("ort-fp32", "ort-int8"), output=out, progress=False)
    return result, out


def test_every_candidate_is_measured_and_the_choice_keeps_the_budget(searched, digits_cnn):
    result, _ = searched
    assert len(result.candidates) == 5 and result.baseline.params == {"lowering": "ort-fp32"}
    assert len({json.dumps(c.params, sort_keys=True) for c in result.candidates}) == 5  # no candidate built twice
    _, test = assets.digits().split(0.2, seed=0)
    with torch.no_grad():
        fp32_accuracy = float((digits_cnn(test.x).argmax(1) == test.y).float().mean())
    assert result.reference_accuracy == pytest.approx(fp32_accuracy, abs=1e-6)
    for c in result.candidates:
        assert c.scores["drop_pp"] == pytest.approx(100 * (fp32_accuracy - c.scores["accuracy"]), abs=1e-4)
        assert c.feasible == (c.scores["drop_pp"] <= 1.0)
        assert (c.latency_ms is not None) == (c.feasible or c is result.baseline)  # infeasible: never timed
    # the fastest feasible candidate, or a more accurate one whose latency cannot be told from it (re-timed together)
    feasible = [c for c in result.candidates if c.feasible]
    fastest = min(feasible, key=lambda c: c.latency_ms)
    assert result.best.feasible and result.best.scores["drop"] <= fastest.scores["drop"]
    if result.best is not fastest:
        tied = fastest.scores["latency_estimate"]["within_noise_of"]
        assert result.best.scores["latency_estimate"]["name"] in tied
    int8 = [c for c in result.candidates if c.params["lowering"] == "ort-int8"]
    assert all(c.size_bytes < result.baseline.size_bytes / 2 for c in int8)  # int8 weights
    with_fallbacks = [c for c in int8 if c.params["fallbacks"]]
    for c in with_fallbacks:  # the named fallbacks are the measured ranking's head
        assert len(c.recipe.int8.float_activations) == min(c.params["fallbacks"], len(c.recipe.int8.float_activations)) > 0


def test_the_outputs_describe_the_search_and_the_recipe_replays_exactly(searched, digits_cnn, tmp_path):
    result, out = searched
    names = sorted(p.name for p in out.iterdir())
    assert names == ["model.onnx", "pareto.json", "pareto.png", "recipe.yaml", "report.md"]
    pareto = json.loads((out / "pareto.json").read_text())
    assert [r["trial"] for r in pareto["candidates"]] == [c.number for c in result.candidates]
    assert sum(r["chosen"] for r in pareto["candidates"]) == 1 and any(r["pareto"] for r in pareto["candidates"])
    assert "(chosen)" in (out / "report.md").read_text()
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["compile"]["quantize"] == result.best.recipe.quantize and recipe["data"] == "digits"
    again = replay(out / "recipe.yaml", output=tmp_path / "again", model=digits_cnn)
    assert again["drop_pp"] == result.best.scores["drop_pp"]  # the same artifact, scored the same
    assert again["size_bytes"] == result.best.size_bytes
    # whichever candidate timing picked: an INT8 one with float fallbacks replays too (it once failed to describe
    # itself when chosen), and every candidate's parameters are recovered from its recipe
    assert all(params_of(c.recipe) == c.params for c in result.candidates)
    int8 = next(c for c in result.candidates if c.params["lowering"] == "ort-int8" and c.params["fallbacks"])
    write_recipe(tmp_path / "int8.yaml", int8, None, [[1, 1, 8, 8]], "digits", 2)
    again = replay(tmp_path / "int8.yaml", output=tmp_path / "int8", model=digits_cnn)
    assert again["drop_pp"] == int8.scores["drop_pp"] and again["size_bytes"] == int8.size_bytes
    replayed = yaml.safe_load((tmp_path / "int8" / "recipe.yaml").read_text())
    assert replayed["measured"]["candidate"] == describe(int8.params)


def test_bad_input_is_refused_naming_the_argument(digits_cnn, tmp_path, searched):
    x = (torch.randn(1, 1, 8, 8),)
    with pytest.raises(InvalidArgumentError, match=r"^max_accuracy_drop"):
        deepseek.optimize(digits_cnn, x, data="digits", max_accuracy_drop=-1)
    with pytest.raises(InvalidArgumentError, match=r"^target.*one of"):
        deepseek.optimize(digits_cnn, x, data="digits", target="tpu")
    with pytest.raises(InvalidArgumentError, match=r"^data.*\(N, 1, 8, 8\)"):
        deepseek.optimize(digits_cnn, x, data="photos")
    with pytest.raises(InvalidArgumentError, match=r"^data"):
        deepseek.optimize(digits_cnn, x, data="imagenet")
    with pytest.raises(InvalidArgumentError, match=r"^output"):
        deepseek.optimize(digits_cnn, x, data="digits", output=searched[1])  # never into a folder with files
    with pytest.raises(InvalidArgumentError, match="lowerings"):
        OptimizeConfig(lowerings=("tensorrt",))


def test_the_command_searches_a_model_file_and_replays_its_recipe(digits_cnn, tmp_path):
    program = torch.export.export(digits_cnn, (torch.randn(1, 1, 8, 8),))
    torch.export.save(program, tmp_path / "net.pt2")
    run = [sys.executable, "-m", "deepseek", "optimize"]
    done = subprocess.run([*run, str(tmp_path / "net.pt2"), "--data", "digits", "--max-accuracy-drop", "1", "--trials",
                           "3", "--lowerings", "ort-fp32,ort-int8", "--output", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "chosen" in done.stdout and (tmp_path / "out" / "model.onnx").is_file()
    recipe = yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text())
    assert recipe["model"] == str(tmp_path / "net.pt2")
    again = subprocess.run([*run, "--recipe", str(tmp_path / "out" / "recipe.yaml"), "--output", str(tmp_path / "again")],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "model.onnx").read_bytes() == (tmp_path / "out" / "model.onnx").read_bytes()
    # (the other refusals are the Python API's, tested above: the command shares them)
    for args, word in ((["--data", "digits", "--max-accuracy-drop", "-2"], "--max-accuracy-drop"),
                       (["--data", "digits", "--prune", "half"], "--prune")):
        bad = subprocess.run([*run, str(tmp_path / "net.pt2"), *args, "--output", str(tmp_path / "bad")],
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and word in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_pruned_candidates_are_fine_tuned_on_the_training_part_and_replay(digits_cnn, tmp_path):
    x = (torch.randn(1, 1, 8, 8),)
    result = deepseek.optimize(digits_cnn, x, data="digits", max_accuracy_drop=100.0, trials=2, lowerings=("ort-fp32",),
                               prune_ratios=(0.5,), finetune_epochs=5, output=tmp_path / "out", progress=False)
    pruned = next(c for c in result.candidates if c.params.get("prune"))
    assert pruned.recipe.finetune == "digits" and pruned.recipe.finetune_epochs == 5
    assert "fine-tuned 5 epoch(s)" in pruned.row()["candidate"]
    assert pruned.size_bytes < 0.6 * result.baseline.size_bytes  # half the channels: about a quarter of the weights
    cfg = OptimizeConfig(data="digits", max_accuracy_drop=100.0, finetune_epochs=0)
    bare = measure_candidate(digits_cnn, x, pruned.params, recipe_for(pruned.params, cfg, "digits", []), cfg,
                             make_judge(digits_cnn, x, "digits"), tmp_path / "bare", (1, 1, 8, 8))
    assert bare.recipe.finetune is None and "not fine-tuned" in bare.row()["candidate"]
    assert pruned.scores["accuracy"] > bare.scores["accuracy"]  # the fine-tune recovers what pruning cost
    if result.best is pruned:
        again = replay(tmp_path / "out" / "recipe.yaml", output=tmp_path / "again", model=digits_cnn, progress=False)
        assert again["drop_pp"] == pruned.scores["drop_pp"]  # the same seeded fine-tune, the same model


def test_bfloat16_is_a_candidate_where_the_cpu_has_it_and_builds_an_aoti_package(digits_cnn, tmp_path):
    cfg = OptimizeConfig(data="digits", max_accuracy_drop=1.0)
    assert "inductor-bf16" not in searched_lowerings(cfg, {"avx512_bf16": False, "amx_bf16": False})
    assert "inductor-bf16" in searched_lowerings(cfg, {"avx512_bf16": True, "amx_bf16": False})
    assert "inductor-bf16" in searched_lowerings(cfg, {"avx512_bf16": False, "amx_bf16": True})
    x = (torch.randn(1, 1, 8, 8),)
    params = {"lowering": "inductor-bf16"}
    recipe = recipe_for(params, cfg, "digits", [])
    assert recipe.precision == "bf16" and recipe.backend == "inductor" and params_of(recipe) == params
    c = measure_candidate(digits_cnn, x, params, recipe, cfg, make_judge(digits_cnn, x, "digits"), tmp_path / "c",
                          (1, 1, 8, 8))
    assert c.error is None and c.path.suffix == ".pt2"
    assert c.scores["drop_pp"] <= 1.0 and c.scores["agreement"] >= 0.99  # 8 significant bits: near-ties may flip
    with pytest.raises(InvalidArgumentError, match=r"^precision: "):
        CompileRecipe(precision="bf16")  # bfloat16 is an Inductor build, not ONNX Runtime's


def test_adaround_is_an_int8_candidate_that_rounds_weights_differently_and_replays(digits_cnn, tmp_path):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    x = (torch.randn(1, 1, 8, 8),)
    cfg = OptimizeConfig(data="digits", max_accuracy_drop=100.0)
    judge = make_judge(digits_cnn, x, "digits")
    built = {}
    for rounding in ("nearest", "adaround"):
        params = {"lowering": "ort-int8", "fallbacks": 0, "calibration_method": "percentile", "bias_correction": False,
                  "rounding": rounding}
        recipe = recipe_for(params, cfg, "digits", [])
        assert recipe.int8.rounding == rounding and params_of(recipe) == params
        built[rounding] = measure_candidate(digits_cnn, x, params, recipe, cfg, judge, tmp_path / rounding, (1, 1, 8, 8))
        assert built[rounding].error is None
    assert "AdaRound" in describe(built["adaround"].params) and "AdaRound" not in describe(built["nearest"].params)

    def int8_weights(c):
        graph = onnx.load(c.path).graph
        return {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}

    near, ada = int8_weights(built["nearest"]), int8_weights(built["adaround"])
    assert near.keys() == ada.keys() and near
    flipped = sum(int((near[k] != ada[k]).sum()) for k in near)
    assert flipped > 0 and all(np.abs(near[k].astype(int) - ada[k].astype(int)).max() <= 1 for k in near)  # up or down
    write_recipe(tmp_path / "ada.yaml", built["adaround"], None, [[1, 1, 8, 8]], "digits", 2)
    assert yaml.safe_load((tmp_path / "ada.yaml").read_text())["compile"]["int8"]["rounding"] == "adaround"
    again = replay(tmp_path / "ada.yaml", output=tmp_path / "again", model=digits_cnn)
    assert again["drop_pp"] == built["adaround"].scores["drop_pp"]


def test_timing_an_onnx_candidate_does_not_import_torch(searched):
    """Each latency is a fresh process: importing torch there would cost seconds a candidate never uses."""
    _, out = searched
    code = ("import sys, json\nfrom deepseek.optimize.latency import measure_job\n"
            f"figures = measure_job({{'artifact': {str(out / 'model.onnx')!r}, 'shape': [1, 1, 8, 8], 'runs': 5}})\n"
            "print('torch' in sys.modules, json.dumps(figures))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported, figures = done.stdout.strip().split(" ", 1)
    assert imported == "False" and json.loads(figures)["median_ms"] > 0
