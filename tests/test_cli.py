"""The command line: every subcommand answers bad input with one clear line and exit status 2."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

import deepseek


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "deepseek", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.onnx"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    deepseek.export_onnx(model.eval(), torch.randn(1, 3, 16, 16), path, dynamic_batch=False)
    return path


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("W1")]  # torch log lines
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_missing_file(tmp_path):
    assert_one_line_error(run("bench", "--model", str(tmp_path / "none.onnx")), "none.onnx")
    assert_one_line_error(run("evaluate", "--model", str(tmp_path / "none.onnx")), "none.onnx")
    assert_one_line_error(run("export", str(tmp_path / "none.pt2"), "-o", str(tmp_path / "x.onnx")), "none.pt2")


def test_corrupt_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf" * 20)
    assert_one_line_error(run("bench", "--model", str(bad), "--backends", "onnxruntime"), "not a loadable ONNX model")
    assert_one_line_error(run("profile", str(bad), "--backend", "onnxruntime"), "ONNX")


def test_wrong_shape(onnx_file):
    assert_one_line_error(run("bench", "--model", str(onnx_file), "--backends", "onnxruntime", "--inputs", "1x3x10"),
                          "shape (1, 3, 10)", "expected (1, 3, 16, 16)")
    assert_one_line_error(run("bench", "--model", str(onnx_file), "--inputs", "1xbad"), "--inputs")


def test_unknown_backend_and_target(onnx_file, tmp_path):
    assert_one_line_error(run("bench", "--model", str(onnx_file), "--backends", "onnxruntime,tensorflow"), "tensorflow")
    assert_one_line_error(run("profile", str(onnx_file), "--backend", "tensorflow"), "tensorflow")
    proc = run("compile", str(onnx_file), "--target-arch", "sparc", "-o", str(tmp_path / "o.onnx"))
    assert proc.returncode == 2 and "sparc" in proc.stderr  # argparse's own usage error


def test_corrupt_pt2_is_one_line_without_torchs_log(tmp_path):
    not_zip = tmp_path / "noise.pt2"
    not_zip.write_bytes(bytes(range(256)) * 12)
    wrong_zip = tmp_path / "wrong.pt2"
    import zipfile

    with zipfile.ZipFile(wrong_zip, "w") as z:
        z.writestr("archive/data.pkl", b"not a program")
    for path in (not_zip, wrong_zip):
        for proc in (run("bench", "--model", str(path), "--backends", "onnxruntime"),
                     run("export", str(path), "-o", str(tmp_path / "o.onnx"))):
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.strip().count("\n") == 0, proc.stderr  # only our line: torch's logged traceback is kept out
            assert "not a valid torch.export archive" in proc.stderr and path.name in proc.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_unwritable_output_folder_and_bad_counts():
    assert_one_line_error(run("demo", "--output", "/proc/nope"), "output", "/proc/nope")
    for args, flag in ((("profile", "resnet50", "--top", "-1"), "--top"), (("profile", "resnet50", "--runs", "0"), "--runs"),
                       (("bench", "--model", "resnet50", "--runs", "0"), "--runs"),
                       (("demo", "--cnn-epochs", "0"), "--cnn-epochs")):
        proc = run(*args)
        assert proc.returncode == 2 and f"argument {flag}: expected an integer >= 1" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_output_never_overwrites_the_input(onnx_file):
    before = onnx_file.read_bytes()
    assert_one_line_error(run("compile", str(onnx_file), "--target-arch", "x86_64", "-o", str(onnx_file)), "output")
    assert onnx_file.read_bytes() == before


def test_pickled_model_needs_the_flag(tmp_path):
    torch.save(torch.nn.Linear(4, 2), tmp_path / "whole.pt")
    assert_one_line_error(run("export", str(tmp_path / "whole.pt"), "--inputs", "1x4", "-o", str(tmp_path / "o.onnx")),
                          "trust")
    ok = run("export", str(tmp_path / "whole.pt"), "--inputs", "1x4", "-o", str(tmp_path / "o.onnx"), "--trust-pickle")
    assert ok.returncode == 0, ok.stderr


def test_export_and_compile_x86(tmp_path):
    proc = run("export", "resnet18", "-o", str(tmp_path / "r18.onnx"))
    assert proc.returncode == 0 and "max abs diff" in proc.stdout
    proc = run("compile", str(tmp_path / "r18.onnx"), "--target-arch", "x86_64", "-O", "3", "-o", str(tmp_path / "r18_opt.onnx"))
    assert proc.returncode == 0, proc.stderr
    p = deepseek.load(tmp_path / "r18_opt.onnx")
    x = torch.randn(2, 3, 224, 224)
    ref = deepseek.load(tmp_path / "r18.onnx")(x)
    assert abs(p(x) - ref).max() < 1e-3


def test_aliases_and_version():
    doctor = subprocess.run([sys.executable, "-c", "from deepseek.cli import doctor_main; doctor_main(['--json', '--fast'])"],
                            capture_output=True, text=True, timeout=300)
    assert doctor.returncode == 0 and "cpu_features" in json.loads(doctor.stdout)
    assert run("--version").stdout.startswith("deepseek ")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    from deepseek.demo import run_demo

    # the demo's steps at small sizes: 32 calibration crops (the demo: 128), 2 epochs on 12,000 images (all 60,000)
    report = run_demo(tmp_path / "demo", runs=2, batch_sizes=(1, 2), cnn_epochs=2, cnn_train_images=12000,
                      optimize_trials=2, calibration_images=32)
    assert report["agreement"]["fp32_onnx"]["value"] >= 0.99
    int8_agreement = report["agreement"]["int8_onnx"]["extra"]
    assert int8_agreement["confident_agreement"] > 0.8  # measured, reported as is
    assert int8_agreement["clear_views"] <= int8_agreement["confident_views"]
    # the layout this CPU's class calls for, held to its floor on held-out crops, and the verdict printed
    from deepseek.quantization import choose_precision

    assert report["int8_plan"]["int8_format"] == choose_precision().int8_format == report["int8"]["attempts"][0]["int8_format"]
    assert report["int8"]["min_agreement"] == 0.95 and not report["int8"]["below_floor"]
    assert "meets its floor" in report["int8_summary"]
    if importlib.util.find_spec("openvino") and importlib.util.find_spec("nncf"):  # the peer, measured in the same run
        peer = {(r["backend"], r["batch_size"]): r for r in report["benchmark"]["peer_openvino_int8"]["rows"]}
        assert peer[("openvino", 1)]["status"] == "ok" and (tmp_path / "demo" / "mobilenet_v2_openvino_int8.bin").exists()
        assert report["agreement"]["peer_openvino_int8"]["extra"]["confident_agreement"] > 0.8
    duel = {e["name"]: e for e in report["head_to_head"]}  # FP32, ours and the peer timed together, interleaved
    assert next(iter(duel)) in duel and all(e["baseline"] == "ONNX Runtime FP32" for e in duel.values())
    assert any(name.startswith("ONNX Runtime INT8") for name in duel)
    assert all(e["ratio_low"] <= e["ratio"] <= e["ratio_high"] and e["rounds"] >= 2 for e in duel.values())
    summary = (tmp_path / "demo" / "summary.md").read_text()
    assert "clear views" in summary and ("near-ties" in summary or "on all" in summary)
    assert "Batch 1, timed together" in summary
    fp32 = {(r["backend"], r["batch_size"]): r for r in report["benchmark"]["fp32"]["rows"]}
    int8 = {(r["backend"], r["batch_size"]): r for r in report["benchmark"]["int8"]["rows"]}
    assert fp32[("onnxruntime", 1)]["status"] == "ok" and fp32[("onnxruntime", 1)]["speedup"] > 0
    assert int8[("onnxruntime", 2)]["status"] == "ok"
    assert int8[("onnxruntime", 1)]["artifact_mb"] < 0.4 * fp32[("onnxruntime", 1)]["artifact_mb"]  # int8 weights
    pruned = {r["variant"]: r for r in report["pruned_int8"]["rows"]}
    dense, small = pruned["dense FP32, ONNX Runtime"], pruned["pruned 50% + INT8, ONNX Runtime"]
    assert dense["accuracy"] > 0.7 and small["accuracy"] > 0.7  # 2 epochs on 12,000 real images: well above chance
    assert small["size_mb"] < 0.25 * dense["size_mb"]  # half the channels (~1/4 of the weights), then int8
    assert report["pruned_int8"]["pruning"]["param_ratio"] < 0.35
    assert all(ms is not None for r in pruned.values() for ms in r["median_ms"].values())
    searched = report["optimize"]  # deepseek optimize on the dense CNN: 2 candidates, one chosen within budget
    assert len(searched["rows"]) == 2 and sum(r["chosen"] for r in searched["rows"]) == 1
    chosen = next(r for r in searched["rows"] if r["chosen"])
    assert chosen["within_budget"] and chosen["drop_pp"] <= 0.5 and chosen["latency_ms"] > 0
    assert "deepseek optimize" in summary
    for name in ("report.json", "benchmark.png", "summary.md", "mobilenet_v2.onnx", "mobilenet_v2_int8.onnx",
                 "cnn_dense.onnx", "cnn_pruned_int8.onnx", "optimize/recipe.yaml", "optimize/pareto.png"):
        assert (tmp_path / "demo" / name).exists()
