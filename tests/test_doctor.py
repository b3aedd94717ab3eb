import json
import subprocess
import sys

import pytest
import torch

from deepseek.doctor import Finding, Report, doctor


def _flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    return set()


def test_json_report_states_this_cpus_amx_and_vnni(tmp_path):
    out = tmp_path / "doctor.json"
    proc = subprocess.run([sys.executable, "-m", "deepseek", "doctor", "--json", "--fast", "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert json.loads(out.read_text())["cpu_features"] == data["cpu_features"]
    flags = _flags()
    if "avx2" in flags or "avx" in flags:  # x86
        assert data["cpu_features"]["amx_int8"] is ("amx_int8" in flags)
        assert data["cpu_features"]["avx512_vnni"] is ("avx512_vnni" in flags)
    assert data["versions"]["torch"] == torch.__version__.split("+")[0]
    assert "CPUExecutionProvider" in data["onnxruntime_providers"]
    assert data["cuda"]["available"] is torch.cuda.is_available()
    assert data["errors"] == 0


def test_exit_code_reflects_errors():
    ok = Report([Finding("s", "a", 1), Finding("s", "b", 2, "warn", "do x")], {})
    assert ok.exit_code == 0
    bad = Report([Finding("s", "a", 1), Finding("s", "b", 2, "error", "do y")], {})
    assert bad.exit_code == 1 and bad.to_dict()["errors"] == 1
    with pytest.raises(ValueError, match="status"):
        Finding("s", "a", 1, "fine")


def test_every_non_ok_finding_carries_a_fix():
    report = doctor(check_compile=False)
    assert report.findings
    for f in report.findings:
        assert f.status == "ok" or f.fix, f


def test_text_report_is_a_table():
    proc = subprocess.run([sys.executable, "-m", "deepseek", "doctor", "--fast"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert "cpu features" in proc.stdout and "onnxruntime" in proc.stdout and "error(s)" in proc.stdout


@pytest.mark.slow
def test_torch_compile_probe_really_compiles():
    report = doctor(check_compile=True)
    finding = next(f for f in report.findings if f.name == "torch.compile")
    assert finding.value == "works" and report.facts["torch_compile"] is True
