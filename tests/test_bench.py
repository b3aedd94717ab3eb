import importlib.util
import json
import subprocess
import sys

import pytest
import torch

import deepseek
from deepseek.bench import LatencyStats, measure, rebatch


class SmallNet(torch.nn.Module):
    """Module-level (picklable) so each backend runs in its own process."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3)))


HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    return deepseek.benchmark(SmallNet().eval(), torch.randn(1, 3, 32, 32), backends=["eager", "onnxruntime", "openvino"],
                              batch_sizes=[1, 3], runs=3, warmup=1, progress=False)


def test_rows_for_every_backend_and_batch(result):
    assert [(r.backend, r.batch_size) for r in result.rows] == [
        ("eager", 1), ("eager", 3), ("onnxruntime", 1), ("onnxruntime", 3), ("openvino", 1), ("openvino", 3)]


def test_statistics_are_consistent(result):
    for r in result.rows:
        if r.backend == "openvino" and not HAS_OPENVINO:
            continue
        lat = r.latency
        assert r.status == "ok" and lat.runs == 3
        assert 0 < lat.min_ms <= lat.median_ms <= lat.p90_ms <= lat.p99_ms
        assert r.throughput == pytest.approx(r.batch_size * 1000 / lat.median_ms)
        assert r.peak_rss_mb > 0 and r.artifact_mb > 0 and r.isolated is True
        assert r.max_abs_diff is not None and r.max_abs_diff < 1e-4
        base = result.row("eager", r.batch_size)
        assert r.speedup == pytest.approx(base.latency.median_ms / lat.median_ms)
    assert result.speedup("eager", 1) == 1.0


def test_onnxruntime_is_measured_without_torch(result):
    ort_row = result.row("onnxruntime", 1)
    assert ort_row.extra["torch_imported"] is False
    assert result.row("eager", 1).extra["torch_imported"] is True
    # the process that only serves ONNX Runtime is much smaller than one that imports torch
    assert ort_row.peak_rss_mb < result.row("eager", 1).peak_rss_mb


def test_openvino_runs_the_same_export_without_torch_or_is_skipped_with_what_to_install(result):
    row = result.row("openvino", 1)
    if HAS_OPENVINO:
        assert row.status == "ok" and row.extra["torch_imported"] is False and row.extra["providers"] == ["OpenVINO CPU"]
    else:
        assert row.status == "skipped" and "deepseek-core[openvino]" in row.reason and row.latency is None


def test_rows_of_another_artifact_join_with_speedups_against_this_baseline(result):
    combined = result.with_rows_of(result, "copy")  # as the demo adds its INT8 model's rows to the FP32 run
    copies = [r for r in combined.rows if r.backend == "copy"]
    assert len(copies) == len([r for r in result.rows if r.status == "ok"]) and len(combined.rows) > len(result.rows)
    for r in copies:
        assert r.speedup == pytest.approx(result.row("eager", r.batch_size).median_ms / r.median_ms)
        assert r.max_abs_diff is None


def test_table_prints_readably(result, printed_table):
    printed_table(result.table(), "onnxruntime", "eager", "openvino" if HAS_OPENVINO else "skipped")


def test_json_and_png(result, tmp_path):
    result.save_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    row = data["rows"][2]
    for key in ("median_ms", "p90_ms", "p99_ms", "throughput", "peak_rss_mb", "speedup", "artifact_mb"):
        assert key in row
    assert data["machine"]["threads"] >= 1 and "cpu" in data["machine"]
    result.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unpicklable_model_is_measured_in_process():
    class Local(torch.nn.Module):
        def forward(self, x):
            return x * 2

    r = deepseek.benchmark(Local(), torch.randn(2, 4), backends=["eager"], runs=2, warmup=0, progress=False)
    row = r.row("eager", 2)
    assert row.status == "ok" and row.isolated is False and "in-process" in row.memory_method


def test_bad_arguments_fail_before_running():
    m, x = SmallNet(), torch.randn(1, 3, 8, 8)
    with pytest.raises(deepseek.InvalidArgumentError, match="backend"):
        deepseek.benchmark(m, x, backends=["eager", "bogus"])
    with pytest.raises(deepseek.InvalidArgumentError, match="batch_sizes"):
        deepseek.benchmark(m, x, batch_sizes=[0])
    with pytest.raises(deepseek.InvalidArgumentError, match="baseline"):
        deepseek.benchmark(m, x, backends=["onnxruntime"], baseline="eager")
    # without a baseline the first backend is the reference
    r = deepseek.benchmark(m, x, backends=["onnxruntime"], runs=1, warmup=0, progress=False, isolate=False)
    assert r.baseline == "onnxruntime" and r.rows[0].speedup == 1.0
    with pytest.raises(deepseek.InvalidArgumentError, match="inputs"):
        deepseek.benchmark(m)


def test_timing_helpers():
    stats = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.median_ms == 3.0 and stats.p90_ms == pytest.approx(61.6) and stats.min_ms == 1.0
    calls = []
    s = measure(lambda: calls.append(1), warmup=2, runs=5)
    assert len(calls) == 7 and s.runs == 5
    assert rebatch(torch.arange(3).numpy(), 7).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_cli_on_an_onnx_file(tmp_path):
    deepseek.export_onnx(SmallNet().eval(), torch.randn(1, 3, 16, 16), tmp_path / "m.onnx", dynamic_batch=False)
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "deepseek", "bench", "--model", str(tmp_path / "m.onnx"), "--backends",
                           "onnxruntime", "--runs", "3", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(out.read_text())["rows"][0]
    assert row["status"] == "ok" and row["median_ms"] > 0 and row["batch_size"] == 1


def test_cli_bad_backend_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "deepseek", "bench", "--model", "resnet18", "--backends", "eager,bogus"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "backend" in proc.stderr and "bogus" in proc.stderr


@pytest.mark.slow
def test_gpt2_generation_reports_tokens_per_second():
    r = deepseek.benchmark("gpt2", backends=["eager", "onnxruntime"], runs=2, warmup=1, new_tokens=4, progress=False)
    row = r.row("eager", 1)
    assert row.status == "ok" and row.extra["tokens_per_call"] == 4
    assert row.tokens_per_s == pytest.approx(4 * 1000 / row.latency.median_ms)
    assert r.row("onnxruntime", 1).status == "skipped"


def _tiny_lm():
    from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM

    torch.manual_seed(0)
    config = DeepSeekConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=255)
    return DeepSeekForCausalLM(config).eval()


def test_causal_lm_decoding_variants_in_one_run():
    model = _tiny_lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(1, 255, (1, 24))  # longer than the compressed caches' 16-token float window
    r = deepseek.benchmark(model, ids, backends=["eager", "compile", "int4", "kv-int8", "kv-int4", "onnxruntime"],
                           runs=2, warmup=1, new_tokens=6, isolate=False, progress=False)
    assert r.model["task"] == "causal-lm"
    for name in ("eager", "compile", "int4", "kv-int8", "kv-int4"):
        row = r.row(name, 1)
        assert row.status == "ok", (name, row.reason)
        assert row.extra["tokens_per_call"] == 6 and 0.0 <= row.extra["tokens_same_as_baseline"] <= 1.0
    assert r.row("eager", 1).extra["tokens_same_as_baseline"] == 1.0
    # int4 weights: a quarter of the Linear bytes plus scales; the caller's model itself is left untouched
    assert r.row("int4", 1).artifact_mb < 0.6 * r.row("eager", 1).artifact_mb
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not hasattr(model.forward, "_torchdynamo_orig_callable")
    assert r.row("onnxruntime", 1).status == "skipped"


def test_decoding_variants_are_skipped_for_a_model_that_does_not_generate():
    r = deepseek.benchmark(SmallNet().eval(), torch.randn(1, 3, 8, 8), backends=["eager", "int4"], runs=1, warmup=0,
                           isolate=False, progress=False)
    row = r.row("int4", 1)
    assert row.status == "skipped" and "causal language model" in row.reason


@pytest.mark.skipif(not deepseek.assets.available().get("smollm2"), reason="SmolLM2 asset not installed")
def test_smollm2_builtin_is_our_causal_lm_on_real_weights_prompted_with_hamlet():
    from deepseek import models
    from deepseek.nn import DeepSeekForCausalLM

    spec = models.get("SmolLM2-135M")
    assert isinstance(spec.model, DeepSeekForCausalLM) and spec.task == "causal-lm" and spec.real_weights
    (ids,) = spec.example_inputs(2)
    assert ids.shape == (2, 32) and torch.equal(ids[0], ids[1])
    with torch.no_grad():  # real weights: the opening of Hamlet is far from random text
        loss = spec.model(ids[:1], labels=ids[:1]).loss
    assert float(loss) < 6.0  # uniform over 49,152 tokens would be 10.8
