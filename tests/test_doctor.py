import json
import platform
import subprocess
import sys

import pytest
import torch

from deepseek.bench.doctor import Finding, Report, _probe, _sm_supported, doctor

X86 = platform.machine().lower() in ("x86_64", "amd64")


def _flags() -> set[str]:
    """This CPU's /proc/cpuinfo flags (x86) or Features (arm64), read independently of deepseek."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip().lower() in ("flags", "features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepseek", "doctor", *args], capture_output=True, text=True, timeout=300)


def test_json_report_states_this_cpus_amx_and_vnni():
    proc = _doctor("--json", "--fast")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    feats = data["cpu_features"]
    for key in ("amx_int8", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni", "avx2", "avx512f"):
        assert isinstance(feats[key], bool), key
    flags = _flags()
    if X86 and flags:
        for key in ("amx_int8", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni", "avx2", "avx512f", "avx512_bf16"):
            assert feats[key] is (key in flags), key
        expected = ("AMX-INT8" if "amx_int8" in flags else "AVX-512 VNNI" if "avx512_vnni" in flags
                    else "AVX-VNNI" if "avx_vnni" in flags else "none")
        assert data["int8_fast_path"].startswith(expected)
        # the INT8 layout follows the class: without VNNI/AMX, U8S8 pair sums saturate int16 and are fixed per layer
        saturating = not ({"amx_int8", "avx512_vnni", "avx_vnni"} & flags)
        assert (data["int8_plan"]["int8_format"] == "u8s8-overflow-fix") is saturating
        assert data["int8_plan"]["cpu_class"] in data["int8_plan"]["reason"]
    else:  # arm64 (or unreadable flags): no AMX/VNNI, stated as false
        assert not feats["amx_int8"] and not feats["avx512_vnni"]
        if flags:
            assert feats["neon"] is ("asimd" in flags)
    assert data["versions"]["torch"] == torch.__version__
    assert data["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "CPUExecutionProvider" in data["onnxruntime_providers"]
    assert data["cuda"]["available"] is torch.cuda.is_available()
    assert data["cuda"]["torch_cuda"] == torch.version.cuda
    assert data["system"]["python"] == platform.python_version()
    assert "torch_compile" not in data  # --fast skips the compile probe
    assert data["errors"] == 0 and data["exit_code"] == 0
    assert {f["status"] for f in data["findings"]} <= {"ok", "warn", "error"}


def test_no_gpu_is_reported_as_ok_cpu_only():
    report = doctor(check_compile=False)
    cuda = [f for f in report.findings if f.section == "cuda"]
    if not torch.cuda.is_available() and report.facts["cuda"]["driver"] is None:
        assert any(f.value == "no CUDA device (CPU only)" and f.status == "ok" for f in cuda)
        assert next(f for f in cuda if f.name == "driver").value == "no driver"


def test_exit_code_reflects_errors():
    ok = Report([Finding("s", "a", 1), Finding("s", "b", 2, "warn", "do x")])
    assert ok.exit_code == 0 and ok.to_dict()["warnings"] == 1
    bad = Report([Finding("s", "a", 1), Finding("s", "b", 2, "error", "do y")], {})
    assert bad.exit_code == 1 and bad.to_dict()["errors"] == 1 and json.loads(bad.to_json())["exit_code"] == 1
    with pytest.raises(ValueError, match="status"):
        Finding("s", "a", 1, "fine")


def test_a_crashing_probe_becomes_an_error_finding():
    findings: list[Finding] = []
    _probe(findings, "libraries", "broken", lambda: 1 / 0)
    (f,) = findings
    assert f.status == "error" and "ZeroDivisionError" in f.value and f.fix
    assert Report(findings).exit_code == 1


def test_every_non_ok_finding_carries_a_fix():
    report = doctor(check_compile=False)
    assert report.findings
    for f in report.findings:
        assert f.status == "ok" or f.fix, f


def test_sm_support_follows_cuda_compatibility_rules():
    arches = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
    assert _sm_supported(9, 0, arches)  # H100
    assert _sm_supported(8, 9, arches)  # Ada runs sm_86 SASS (same major)
    assert not _sm_supported(6, 1, arches)  # Pascal: too old for this build
    assert not _sm_supported(10, 3, ["sm_90a"])  # arch-specific SASS runs on that arch only
    assert _sm_supported(10, 0, ["sm_80", "compute_90"])  # PTX JIT-compiles forward


def test_text_report_and_output_file(tmp_path):
    out = tmp_path / "sub" / "doctor.json"
    proc = _doctor("--fast", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("deepseek ") and " doctor — " in lines[0]
    for text in ("cpu features", "AMX-INT8", "onnxruntime", "cuda", "error(s)"):
        assert text in proc.stdout, text
    data = json.loads(out.read_text())
    assert data["versions"]["torch"] == torch.__version__ and data["findings"]
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # atomic write leaves no temp file


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_findings_name_the_device_and_its_capability():
    report = doctor(check_compile=False)
    gpus = report.facts["cuda"]["gpus"]
    assert len(gpus) == torch.cuda.device_count()
    major, minor = torch.cuda.get_device_capability(0)
    assert gpus[0]["compute_capability"] == f"{major}.{minor}" and gpus[0]["name"] == torch.cuda.get_device_name(0)
    assert report.facts["cuda"]["driver"]  # nvidia-smi, /proc or libcuda
    assert report.exit_code == 0, [f for f in report.findings if f.status == "error"]


@pytest.mark.slow
def test_torch_compile_probe_really_compiles():
    report = doctor(check_compile=True)
    finding = next(f for f in report.findings if f.name == "torch.compile")
    assert finding.status == "ok" and finding.value.startswith("works"), finding
    assert report.facts["torch_compile"]["cpu"]["ok"] is True
