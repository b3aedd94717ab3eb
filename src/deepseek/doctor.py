"""``deepseek doctor``: a paste-ready report of the environment, each finding with a status and a fix."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from . import _machine

STATUSES = ("ok", "warn", "error")
CORE = {"torch": "pip install torch==2.14.1", "onnx": "pip install onnx", "onnxruntime": "pip install onnxruntime"}
OPTIONAL = ("torchvision", "numpy", "onnxscript", "transformers", "safetensors", "torchao", "executorch",
            "apache-tvm", "openvino", "tensorrt")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One checked fact: its value, whether it is fine, and what to do when it is not."""

    section: str
    name: str
    value: Any
    status: str = "ok"
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: got {self.status!r}, expected one of {STATUSES}")


@dataclasses.dataclass(frozen=True)
class Report:
    """All findings, plus the machine-readable facts (CPU features, versions, GPUs)."""

    findings: list[Finding]
    facts: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 1 if any(f.status == "error" for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.facts, "findings": [dataclasses.asdict(f) for f in self.findings],
                "errors": sum(f.status == "error" for f in self.findings),
                "warnings": sum(f.status == "warn" for f in self.findings)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def _probe(findings: list[Finding], section: str, name: str, fn: Callable[[], Finding | list[Finding]]) -> None:
    """Run one probe; a probe that crashes becomes an error finding instead of crashing the report."""
    try:
        out = fn()
        findings.extend(out if isinstance(out, list) else [out])
    except Exception as exc:
        findings.append(Finding(section, name, f"probe failed: {type(exc).__name__}: {exc}", "error",
                                "report this output as a bug"))


def _system(facts: dict[str, Any]) -> list[Finding]:
    import psutil

    mem = psutil.virtual_memory()
    facts["system"] = {
        "os": platform.platform(), "python": platform.python_version(), "arch": platform.machine(),
        "cpu": _machine.cpu_model(), "physical_cores": _machine.physical_cores(), "logical_cpus": os.cpu_count(),
        "memory_total_gb": round(mem.total / 2**30, 1), "memory_available_gb": round(mem.available / 2**30, 1),
    }
    s = facts["system"]
    py_ok = tuple(int(x) for x in s["python"].split(".")[:2]) >= (3, 10)
    return [
        Finding("system", "os", s["os"]),
        Finding("system", "python", s["python"], "ok" if py_ok else "error", None if py_ok else "use Python 3.10 or newer"),
        Finding("system", "cpu", f"{s['cpu']} ({s['arch']})"),
        Finding("system", "cores / threads", f"{s['physical_cores']} physical, {s['logical_cpus']} logical"),
        Finding("system", "memory", f"{s['memory_total_gb']} GB total, {s['memory_available_gb']} GB available",
                "ok" if s["memory_available_gb"] >= 2 else "warn",
                None if s["memory_available_gb"] >= 2 else "less than 2 GB free: large models may not fit"),
    ]


def _cpu(facts: dict[str, Any]) -> list[Finding]:
    feats = _machine.cpu_features()
    facts["cpu_features"] = feats
    arm = platform.machine().lower() in ("aarch64", "arm64")
    out = []
    for name, present in feats.items():
        status, fix = "ok", None
        if name == "avx2" and not present:
            status, fix = "warn", "this x86 CPU lacks AVX2: PyTorch and ONNX Runtime fall back to slow kernels"
        if name == "neon" and not present:
            status, fix = "warn", "no NEON/ASIMD: ARM kernels will be slow"
        out.append(Finding("cpu features", name.upper().replace("_", "-"), "yes" if present else "no", status, fix))
    bf16 = feats.get("amx_bf16") or feats.get("avx512_bf16") or feats.get("bf16")
    facts["int8_fast_path"] = _machine.int8_fast_path(feats)
    facts["bf16_fast"] = bool(bf16)
    out.append(Finding("cpu features", "int8 fast path", facts["int8_fast_path"]))
    out.append(Finding("cpu features", "bf16 in hardware", "yes" if bf16 else "no"))
    try:
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
        facts["torch_cpu_capability"] = cap
        out.append(Finding("cpu features", "torch CPU kernels", cap))
    except ImportError:
        pass
    if not arm and not feats:
        out.append(Finding("cpu features", "flags", "unreadable", "warn", "could not read /proc/cpuinfo"))
    return out


def _libraries(facts: dict[str, Any]) -> list[Finding]:
    versions = {d: _machine.version_of(d) for d in (*CORE, *OPTIONAL)}
    facts["versions"] = versions
    out = []
    for dist in (*CORE, *OPTIONAL):
        v = versions[dist]
        if dist in CORE and v is None:
            out.append(Finding("libraries", dist, "not installed", "error", CORE[dist]))
        else:
            out.append(Finding("libraries", dist, v or "not installed (optional)"))
    if versions["onnxruntime"]:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        facts["onnxruntime_providers"] = providers
        out.append(Finding("libraries", "onnxruntime providers", ", ".join(providers)))
    return out


def _nvidia_smi() -> tuple[str | None, list[dict[str, str]]]:
    """(driver's highest CUDA version, per-GPU driver/name/compute capability) from nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, []
    header = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
    m = re.search(r"CUDA Version:\s*([0-9.]+)", header)
    q = subprocess.run([exe, "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"],
                       capture_output=True, text=True, timeout=20).stdout
    gpus = []
    for line in q.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"driver": parts[0], "name": parts[1], "compute_capability": parts[2]})
    return (m.group(1) if m else None), gpus


def _cuda(facts: dict[str, Any]) -> list[Finding]:
    import torch

    driver_cuda, smi = _nvidia_smi()
    built = torch.version.cuda
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    available = torch.cuda.is_available()
    info: dict[str, Any] = {"available": available, "torch_cuda": built, "cudnn": cudnn,
                            "driver_cuda": driver_cuda, "driver": smi[0]["driver"] if smi else None, "gpus": []}
    facts["cuda"] = info
    out = [Finding("cuda", "torch built with CUDA", built or "no (CPU build)")]
    if not available and not smi:
        out.append(Finding("cuda", "GPU", "no CUDA device (CPU only)"))
        return out
    out.append(Finding("cuda", "driver", f"{info['driver'] or 'unknown'} (supports CUDA {driver_cuda or '?'})"))
    if built and driver_cuda and _ver(driver_cuda) < _ver(built):
        out.append(Finding("cuda", "driver vs torch CUDA", f"driver CUDA {driver_cuda} < torch CUDA {built}", "error",
                           f"upgrade the NVIDIA driver to one supporting CUDA {built}, or install a torch built for CUDA {driver_cuda}"))
    elif built and driver_cuda:
        out.append(Finding("cuda", "driver vs torch CUDA", f"ok (driver {driver_cuda} >= torch {built})"))
    out.append(Finding("cuda", "cuDNN", str(cudnn) if cudnn else "not available",
                       "ok" if cudnn or not built else "warn", None if cudnn or not built else "cuDNN missing: convolutions will be slow"))
    if not available:
        out.append(Finding("cuda", "torch.cuda.is_available()", "False", "error",
                           "a GPU is present but torch cannot use it: check the driver and that torch is a CUDA build"))
        return out
    arches = torch.cuda.get_arch_list()
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        name = torch.cuda.get_device_name(i)
        sm = f"sm_{major}{minor}"
        supported = sm in arches or any(a.startswith("compute_") and int(a[8:]) <= major * 10 + minor for a in arches)
        info["gpus"].append({"index": i, "name": name, "compute_capability": f"{major}.{minor}", "supported_by_torch": supported,
                             "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)})
        out.append(Finding("cuda", f"GPU {i}", f"{name}, compute capability {major}.{minor} ({sm})",
                           "ok" if supported else "error",
                           None if supported else f"this torch build has kernels for {arches}; install one built for {sm}"))
    return out


def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def _torch_compile(facts: dict[str, Any]) -> Finding:
    import torch

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * 2 + 1

    try:
        x = torch.randn(64)
        ok = torch.allclose(torch.compile(f)(x), f(x), atol=1e-5)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        facts["torch_compile"] = False
        hint = "install a C++ compiler (apt-get install g++)" if shutil.which("g++") is None else \
            "run with TORCH_LOGS=+dynamo for details; torch.compile falls back to eager in deepseek"
        return Finding("torch", "torch.compile", f"fails: {first[:160]}", "warn", hint)
    facts["torch_compile"] = bool(ok)
    return Finding("torch", "torch.compile", "works" if ok else "wrong results", "ok" if ok else "error",
                   None if ok else "torch.compile gave different results from eager: report to PyTorch")


def _deploy_tools(facts: dict[str, Any]) -> list[Finding]:
    gxx = shutil.which("aarch64-linux-gnu-g++")
    qemu = shutil.which("qemu-aarch64")
    sysroot = os.path.isdir("/usr/aarch64-linux-gnu")
    facts["arm64_toolchain"] = {"cross_gxx": gxx, "qemu_aarch64": qemu, "sysroot": sysroot}
    fix = "apt-get install g++-aarch64-linux-gnu qemu-user"
    return [
        Finding("deploy", "arm64 cross compiler", gxx or "missing", "ok" if gxx else "warn", None if gxx else fix),
        Finding("deploy", "qemu-aarch64", qemu or "missing", "ok" if qemu else "warn", None if qemu else fix),
        Finding("deploy", "arm64 sysroot", "/usr/aarch64-linux-gnu" if sysroot else "missing", "ok" if sysroot else "warn",
                None if sysroot else fix),
    ]


def _offline(facts: dict[str, Any]) -> Finding:
    from . import assets

    found = assets.available()
    facts["assets"] = found
    missing = [k for k, v in found.items() if not v]
    return Finding("assets", "offline data and weights", f"{len(found) - len(missing)}/{len(found)} present"
                   + (f" (missing: {', '.join(missing)})" if missing else ""), "warn" if missing else "ok",
                   "; ".join(assets.ASSETS[m] for m in missing) or None)


def doctor(check_compile: bool = True) -> Report:
    """Probe this machine and return the report. ``check_compile`` runs a real torch.compile (seconds)."""
    from . import __version__

    facts: dict[str, Any] = {"deepseek": __version__, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    findings: list[Finding] = []
    _probe(findings, "system", "system", lambda: _system(facts))
    _probe(findings, "cpu features", "cpu", lambda: _cpu(facts))
    _probe(findings, "libraries", "libraries", lambda: _libraries(facts))
    if facts.get("versions", {}).get("torch"):
        _probe(findings, "cuda", "cuda", lambda: _cuda(facts))
        if check_compile:
            _probe(findings, "torch", "torch.compile", lambda: _torch_compile(facts))
    _probe(findings, "deploy", "deploy", lambda: _deploy_tools(facts))
    _probe(findings, "assets", "assets", lambda: _offline(facts))
    return Report(findings, facts)


def render(report: Report, console: Any) -> None:
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "error": "red"}
    table = Table(title=f"deepseek {report.facts['deepseek']} doctor — {report.facts['date']}", title_justify="left")
    for col in ("section", "check", "value", "status", "fix"):
        table.add_column(col, overflow="fold")
    last = None
    for f in report.findings:
        table.add_row(f.section if f.section != last else "", f.name, str(f.value), f"[{colour[f.status]}]{f.status}[/]", f.fix or "")
        last = f.section
    console.print(table)
    d = report.to_dict()
    console.print(f"{d['errors']} error(s), {d['warnings']} warning(s)")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON (nothing else on stdout)")
    parser.add_argument("--output", "-o", default=None, help="also write the JSON report to this file")
    parser.add_argument("--fast", action="store_true", help="skip the torch.compile probe (it takes seconds)")


def run_cli(args: argparse.Namespace) -> int:
    report = doctor(check_compile=not args.fast)
    if args.output:
        from ._atomic import write_text

        write_text(args.output, report.to_json() + "\n")
    if args.json:
        print(report.to_json())
    else:
        from ._cli_common import console

        render(report, console())
    return report.exit_code
