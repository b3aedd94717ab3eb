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
