"""CompileRecipe: the compile pipeline's one description of what to build — validated, and replayable from JSON."""

import pytest

from deepseek._errors import InvalidArgumentError
from deepseek.compile import CompileRecipe


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
