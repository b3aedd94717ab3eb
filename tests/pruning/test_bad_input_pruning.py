"""Bad input to pruning (``deepseek prune`` and the Python API) is one clear line naming the flag or argument:
no traceback, no "internal error", the inputs unchanged and no output written."""

import math

import numpy as np
import pytest
import torch

from _refusals import refused
from deepseek import InvalidArgumentError
from deepseek.pruning import (
    DynamicSparseTraining,
    SparsityScheduler,
    dynamic_channels,
    prunable_layers,
    prune_channels,
    slimming_penalty,
    sparsity_at,
    sparsity_report,
)


@pytest.fixture(scope="module")
def squeezenet_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), path)
    return path


MODEL = ["--arch", "torchvision:squeezenet1_1", "--inputs", "1x3x64x64", "--runs", "1"]


@pytest.mark.parametrize("args, flag, words", [
    (["--ignore", "re:["], "--ignore", ["re:[", "regular expression"]),
    (["--ignore", "re:"], "--ignore", ["non-empty"]),
    (["--ignore", "nosuch"], "--ignore", ["nosuch", "features.0"]),  # matches no layer: real names are listed
    (["--ignore", "features.3.squeeze", "--ignore", "re:classifier\\.9"], "--ignore", ["classifier"]),
    (["--ratio", "1"], "--ratio", ["> 0 and < 1"]),
    (["--ratio", "0"], "--ratio", ["> 0 and < 1"]),
    (["--ratio", "-0.2"], "--ratio", ["'-0.2'"]),
    (["--ratio", "nan"], "--ratio", ["'nan'"]),
    (["--ratio", "half"], "--ratio", ["'half'"]),
    (["--round-to", "0"], "--round-to", [">= 1"]),
    (["--steps", "0"], "--steps", [">= 1"]),
    (["--runs", "-3"], "--runs", [">= 1"]),
    (["--importance", "vibes"], "--importance", ["vibes"]),
    (["--output", "pruned.bin"], "--output", [".onnx or .pt2"]),
    (["--inputs", "1x3"], "--inputs", ["(1, 3)", "SqueezeNet"]),
    (["--inputs", "1x3xAx4"], "--inputs", ["1x3xAx4"]),
])
def test_cli_bad_flags(capsys, tmp_path, squeezenet_file, args, flag, words):
    refused(["prune", squeezenet_file, *MODEL, *args], capsys, all_of=[flag, *words], unchanged=squeezenet_file.parent)
    assert list(tmp_path.iterdir()) == []


def test_cli_outputs_are_checked_before_any_work(capsys, tmp_path, squeezenet_file):
    folder = tmp_path / "pruned.onnx"
    folder.mkdir()  # a folder where the file goes
    refused(["prune", squeezenet_file, *MODEL, "--output", folder], capsys, all_of=["--output", "folder"],
            unchanged=tmp_path)
    onnx_input = tmp_path / "model.onnx"
    onnx_input.write_bytes(b"not really onnx")
    refused(["prune", onnx_input, "--inputs", "1x3x8x8", "--output", onnx_input], capsys, "--output",
            unchanged=tmp_path)  # the input itself
    refused(["prune", squeezenet_file, *MODEL, "--output", "/proc/no/such/pruned.onnx"], capsys, "--output",
            unchanged=tmp_path)  # unwritable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "pruned.onnx"]


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


X = torch.randn(1, 3, 8, 8)


@pytest.mark.parametrize("kwargs, argument, word", [
    ({"ignore": "re:["}, "ignore", "regular expression"),
    ({"ignore": ["conv", "re:(unclosed"]}, "ignore", "re:(unclosed"),
    ({"ignore": "nosuch"}, "ignore", "conv"),  # a pattern matching no layer, and the real names
    ({"ignore": 3}, "ignore", "int"),
    ({"ignore": [""]}, "ignore", "non-empty"),
    ({"ratio": 1.0}, "ratio", "[0, 1)"),
    ({"ratio": math.nan}, "ratio", "nan"),
    ({"ratio": True}, "ratio", "True"),
    ({"round_to": True}, "round_to", "True"),
    ({"round_to": 0}, "round_to", "positive"),
    ({"steps": 1.5}, "steps", "1.5"),
    ({"importance": 3}, "importance", "3"),
    ({"global_ranking": "yes"}, "global_ranking", "yes"),
    ({"ration": 0.3}, "config", "ration"),  # a misspelt keyword is named, not a TypeError
    ({"finetune": "epoch"}, "finetune", "str"),
    ({"inplace": "yes"}, "inplace", "yes"),
    ({"config": "fast"}, "config", "str"),
    ({"example_inputs": torch.randn(1, 3)}, "example_inputs", "Small"),
    ({"example_inputs": "image.png"}, "example_inputs", "str"),
])
def test_prune_channels_bad_arguments(kwargs, argument, word):
    model = Small().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"ratio": 0.5, "example_inputs": X} | kwargs
    with pytest.raises(InvalidArgumentError) as info:
        prune_channels(model, **kwargs)
    assert str(info.value).startswith(f"{argument}:") and word in str(info.value), info.value
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_prune_channels_takes_numpy_inputs():
    result = prune_channels(Small().eval(), 0.5, np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype("float32"))
    assert result.model.conv.out_channels == 4 and result.protected == ["head"]


def test_channel_shuffle_is_refused_naming_the_layer():
    class Shuffle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 8, 1)
            self.b = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            y = self.a(x)
            y = y.view(1, 2, 4, 8, 8).transpose(1, 2).reshape(1, 8, 8, 8)  # ShuffleNet's channel shuffle
            return self.b(y)

    with pytest.raises(InvalidArgumentError, match=r"model: .*layer 'Shuffle' shuffles its 8 channels between 2 groups"):
        prune_channels(Shuffle().eval(), 0.5, X)


@pytest.mark.parametrize("make, argument, word", [
    (lambda m: SparsityScheduler(0.5, skip=["re:("]), "skip", "regular expression"),
    (lambda m: SparsityScheduler(0.5, skip="nosuch").step(m), "skip", "conv"),
    (lambda m: SparsityScheduler(0.5, skip="bn").step(m), "skip", "Linear/Conv"),  # not a prunable layer
    (lambda m: SparsityScheduler(0.5, bogus=1), "config", "bogus"),
    (lambda m: SparsityScheduler(0.5, seed=-1), "seed", "-1"),
    (lambda m: SparsityScheduler(0.5, end_step=True), "end_step", "True"),
    (lambda m: SparsityScheduler(0.5).sparsity_at("10"), "step", "'10'"),
    (lambda m: SparsityScheduler(0.5).step(m, step=-1), "step", "-1"),
    (lambda m: DynamicSparseTraining(0.5, skip="nope").start(m), "skip", "nope"),
    (lambda m: DynamicSparseTraining(0.5, regrow_fraction=True), "regrow_fraction", "True"),
    (lambda m: DynamicSparseTraining(0.5, update_frequency=10), "config", "update_frequency"),
    (lambda m: DynamicSparseTraining(0.5).step(m, -100), "step", "-100"),
    (lambda m: DynamicSparseTraining(0.5).step("model", 100), "model", "str"),
    (lambda m: DynamicSparseTraining(0.5).drop_fraction(None), "step", "None"),
    (lambda m: prunable_layers(m, ["re:["]), "skip", "regular expression"),
    (lambda m: prunable_layers("model"), "model", "str"),
    (lambda m: sparsity_at("5", target=0.5, start_step=0, end_step=10), "step", "'5'"),
    (lambda m: sparsity_at(5, target=1.5, start_step=0, end_step=10), "target", "1.5"),
    (lambda m: sparsity_at(5, target=0.5, start_step=10, end_step=10), "end_step", "10"),
    (lambda m: sparsity_at(5, target=0.5, start_step=0, end_step=10, initial=0.9), "initial", "0.9"),
    (lambda m: sparsity_report([1, 2]), "model", "list"),
    (lambda m: slimming_penalty(m, math.inf), "strength", "inf"),
    (lambda m: slimming_penalty(m, True), "strength", "True"),
    (lambda m: dynamic_channels(m, 0.5, torch.randn(1, 3)), "example_inputs", "Small"),
    (lambda m: dynamic_channels(m, 0.5, X, skip_first="no"), "skip_first", "no"),
    (lambda m: dynamic_channels(m, math.nan, X), "keep", "nan"),
])
def test_sparsity_api_bad_arguments(make, argument, word):
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InvalidArgumentError) as info:
        make(model)
    assert str(info.value).startswith(f"{argument}:") and word in str(info.value), info.value
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in model.modules())


def test_sparsity_report_save_json_checks_its_path(tmp_path):
    report = sparsity_report(Small())
    with pytest.raises(InvalidArgumentError, match=r"^path: .*folder"):
        report.save_json(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"^path: "):
        report.save_json("/proc/no/such/report.json")
    assert list(tmp_path.iterdir()) == []
