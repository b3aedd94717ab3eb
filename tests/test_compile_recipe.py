"""CompileRecipe: the compile pipeline's one description of what to build — validated, and replayable from JSON."""

import pytest
import torch

import deepseek
from deepseek._core.errors import InvalidArgumentError
from deepseek.compile import CompileRecipe
from deepseek.quantization import StaticINT8Config


def test_a_recipe_round_trips_and_names_its_lowering():
    recipe = CompileRecipe(target_arch="x86_64", quantize="int8", prune=0.3, optimization_level=3, samples=32)
    assert CompileRecipe.from_json(recipe.to_json()) == recipe
    assert recipe.lowering == "ort-int8"
    assert CompileRecipe(backend="inductor", quantize="int8").lowering == "inductor"
    assert CompileRecipe(target_arch="arm64").lowering == "executorch"
    assert CompileRecipe(target_arch="arm64", backend="tvm").lowering == "tvm"
    assert CompileRecipe(target_arch="cuda").lowering == "ort-float"


@pytest.mark.parametrize(("fields", "word"), [
    ({"target_arch": "riscv"}, "target_arch"), ({"quantize": "int4"}, "quantize"),
    ({"backend": "tvm"}, "backend"), ({"target_arch": "arm64", "backend": "tvm", "quantize": "int8"}, "quantize"),
    ({"target_arch": "cuda", "quantize": "int8"}, "CUDA INT8"), ({"precision": "fp16"}, "precision"),
    ({"prune": 1.5}, "prune"), ({"optimization_level": 7}, "optimization_level"), ({"samples": 0}, "samples")])
def test_bad_recipes_are_refused_naming_the_flag(fields, word):
    with pytest.raises(InvalidArgumentError, match=word):
        CompileRecipe(**fields)


def test_the_int8_floor_is_a_recipe_setting_that_optimize_turns_off(tmp_path):
    from deepseek.compile.pipeline import CompileRecipe, build
    from deepseek.optimize.config import OptimizeConfig
    from deepseek.optimize.search import recipe_for

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 64, 10)).eval()
    common = dict(target_arch="x86_64", quantize="int8", calib="digits", samples=64)
    held = build(model, CompileRecipe(**common, int8=StaticINT8Config(method="percentile", min_agreement=1.0)),
                 tmp_path / "floor.onnx",
                 inputs=(torch.zeros(1, 1, 8, 8),))
    assert held["attempts"] and held["attempts"][0]["int8_format"]  # judged on its held-out samples
    free = build(model, CompileRecipe(**common, int8=StaticINT8Config(method="percentile", min_agreement=None)),
                 tmp_path / "free.onnx",
                 inputs=(torch.zeros(1, 1, 8, 8),))
    assert free["attempts"] == [] and free["below_floor"] is False and free["float_activations"] == []
    params = {"lowering": "ort-int8", "fallbacks": 0, "calibration_method": "percentile", "bias_correction": False,
              "rounding": "nearest"}
    # optimize's candidates are exactly what their parameters say; its own judge and budget decide
    assert recipe_for(params, OptimizeConfig(data="digits"), "digits", []).int8.min_agreement is None
    with pytest.raises(deepseek.InvalidArgumentError, match="min_agreement"):
        CompileRecipe(**common, int8=StaticINT8Config(min_agreement=1.5))


def test_the_recipe_nests_its_int8_scheme_and_reads_version_1():
    recipe = CompileRecipe(quantize="int8", int8=StaticINT8Config(method="entropy", float_activations=["a", "b"]))
    assert CompileRecipe.from_json(recipe.to_json()) == recipe and recipe.to_dict()["_version"] == 2
    old = {"quantize": "int8", "calibration_method": "minmax", "bias_correction": True, "rounding": "adaround",
           "float_activations": ["x"], "keep_fp32": 2, "min_agreement": None, "_version": 1}
    read = CompileRecipe.from_dict(old)
    assert read.int8 == StaticINT8Config(method="minmax", bias_correction=True, rounding="adaround",
                                         float_activations=("x",), keep_fp32=2, min_agreement=None)
    with pytest.raises(InvalidArgumentError, match=r"^int8\.bias_correction: .*quantize='int8'"):
        CompileRecipe(int8=StaticINT8Config(method="percentile", bias_correction=True))  # float build: unused
    with pytest.raises(InvalidArgumentError, match=r"^int8: "):
        CompileRecipe(int8="percentile")
    with pytest.raises(InvalidArgumentError, match=r"^method: "):
        CompileRecipe.from_dict({"quantize": "int8", "int8": {"method": "kl"}})
