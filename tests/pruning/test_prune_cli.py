"""``deepseek prune``: prunes, verifies, measures, writes; bad input is one clear line with exit status 2."""

import subprocess
import sys

import onnx


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "deepseek", "prune", *args], capture_output=True, text=True, timeout=timeout)


def test_prune_writes_a_smaller_verified_onnx(tmp_path):
    out = tmp_path / "r18_pruned.onnx"
    proc = run("resnet18", "--ratio", "0.5", "--round-to", "8", "--runs", "1", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "params 11,689,512 →" in proc.stdout and "kept whole: fc" in proc.stdout and "eager latency" in proc.stdout
    graph = onnx.load(str(out))
    first_conv = next(i for i in graph.graph.initializer if i.name.endswith("conv1.weight"))
    assert first_conv.dims[0] == 32  # 64 → 32 output channels


def test_bad_arguments_are_one_line():
    for args, word in ((["resnet18", "--ratio", "1.5"], "ratio"), (["resnet18", "--output", "x.bin"], "--output"),
                       (["no_such_model"], "model")):
        proc = run(*args)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("W1")]
        assert len(lines) == 1 and word in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_prune_model_is_the_command_from_python(tmp_path):
    """What `deepseek prune` prints and writes, as one library call (a module or a file; errors name the argument)."""
    import pytest
    import torch

    from deepseek import InvalidArgumentError
    from deepseek.pruning.workflow import prune_model

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 4))
    done = prune_model(net, 0.5, inputs=[(1, 3, 16, 16)], runs=2, output=tmp_path / "p.onnx")
    assert done.output == tmp_path / "p.onnx" and done.output.is_file() and done.model[0].out_channels == 8
    assert done.dense_ms > 0 and done.pruned_ms > 0 and done.speedup == done.dense_ms / done.pruned_ms
    assert "dense" in done.summary()[1] and done.summary()[-1].startswith("wrote ")
    with pytest.raises(InvalidArgumentError, match=r"^output: "):
        prune_model(net, 0.5, inputs=[(1, 3, 16, 16)], output=tmp_path / "p.txt")
    with pytest.raises(InvalidArgumentError, match=r"^inputs: "):
        prune_model(net, 0.5)
    with pytest.raises(InvalidArgumentError, match=r"^runs: "):
        prune_model(net, 0.5, inputs=[(1, 3, 16, 16)], runs=0)
