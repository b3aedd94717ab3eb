"""``deepseek doctor``: a paste-ready report of the environment, each finding with a status and a fix.

Every finding is measured on this machine when :func:`doctor` runs. Heavy modules (torch, onnxruntime)
are imported inside the probes, so importing this module stays fast, and a probe that fails becomes an
``error`` finding instead of stopping the report.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .._core import machine as _machine

STATUSES = ("ok", "warn", "error")
# core distributions: missing is an error; value is the fix. Alternatives: any one installed counts.
CORE = {"torch": "pip install torch", "onnx": "pip install onnx", "onnxruntime": "pip install onnxruntime"}
OPTIONAL = ("torchvision", "numpy", "onnxscript", "transformers", "safetensors", "torchao", "executorch",
            "tvm", "openvino", "tensorrt")
DIST_NAMES = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                    "onnxruntime-qnn", "ort-nightly"),
    "tvm": ("apache-tvm", "tvm", "mlc-ai-nightly"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11"),
}
# reported feature key -> label in the table
FEATURE_LABELS = {
    "avx2": "AVX2", "avx512f": "AVX-512 (F)", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16", "avx512_fp16": "AVX-512 FP16", "amx_tile": "AMX-TILE", "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16", "neon": "NEON/ASIMD", "sve": "SVE", "sve2": "SVE2", "i8mm": "I8MM", "bf16": "BF16 (arm)",
    "dotprod": "DOTPROD",
}
CROSS_FIX = "apt-get install g++-aarch64-linux-gnu qemu-user"
COMPILE_TIMEOUT_S = 300.0
_COMPILE_SCRIPT = r"""
import json, sys, time
import torch
out = {}
for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
    fn = torch.compile(lambda x: x * 2 + 1)
    x = torch.randn(64, device=dev)
    t0 = time.perf_counter()
    try:
        y = fn(x)
        out[dev] = {"ok": bool(torch.allclose(y, x * 2 + 1)), "seconds": round(time.perf_counter() - t0, 1)}
    except Exception as exc:
        out[dev] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    torch._dynamo.reset()
sys.stdout.write("\n" + json.dumps(out) + "\n")
"""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One checked fact: its value, whether it is fine, and what to do when it is not."""

    section: str
    name: str
    value: Any
    status: str = "ok"
    fix: str | None = None

    def __post_init__(self) -> None:
        from .._core.checks import check_choice

        check_choice(self.status, "status", STATUSES, expected=f"one of {STATUSES}")


@dataclasses.dataclass(frozen=True)
class Report:
    """All findings, plus the machine-readable facts (CPU features, versions, CUDA, GPUs)."""

    findings: list[Finding]
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when any finding is an error, else 0."""
        return 1 if any(f.status == "error" for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        """The facts, every finding, and the error/warning counts, as plain JSON-ready data."""
        return {**self.facts, "findings": [dataclasses.asdict(f) for f in self.findings],
                "errors": sum(f.status == "error" for f in self.findings),
                "warnings": sum(f.status == "warn" for f in self.findings), "exit_code": self.exit_code}

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def save_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to the file ``path`` atomically."""
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path")
        write_text(path, self.to_json() + "\n")


def _probe(findings: list[Finding], section: str, name: str, fn: Callable[[], Finding | list[Finding]]) -> None:
    """Run one probe; a probe that crashes becomes an error finding instead of crashing the report."""
    try:
        out = fn()
        findings.extend(out if isinstance(out, list) else [out])
    except Exception as exc:
        findings.append(Finding(section, name, f"probe failed: {type(exc).__name__}: {_first_line(exc)}", "error",
                                "paste this report into a bug report for deepseek"))


def _first_line(exc: BaseException | str, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def _system(facts: dict[str, Any]) -> list[Finding]:
    import psutil

    mem = psutil.virtual_memory()
    s = facts["system"] = {
        "os": platform.platform(), "python": platform.python_version(), "arch": platform.machine(),
        "cpu": _machine.cpu_model(), "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True), "usable_cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_gb": round(mem.total / 2**30, 1), "memory_available_gb": round(mem.available / 2**30, 1),
    }
    py_ok = sys.version_info >= (3, 10)
    low_mem = s["memory_available_gb"] < 2
    threads = f"{s['physical_cores']} physical cores, {s['logical_cpus']} logical threads"
    if s["usable_cpus"] != s["logical_cpus"]:
        threads += f" ({s['usable_cpus']} usable by this process)"
    return [
        Finding("system", "os", s["os"]),
        Finding("system", "python", f"{s['python']} ({sys.executable})", "ok" if py_ok else "error",
                None if py_ok else "use Python 3.10 or newer"),
        Finding("system", "cpu", f"{s['cpu']} ({s['arch']})"),
        Finding("system", "cores / threads", threads),
        Finding("system", "memory", f"{s['memory_total_gb']} GB total, {s['memory_available_gb']} GB available",
                "warn" if low_mem else "ok", "less than 2 GB free: close other programs; large models may not fit"
                if low_mem else None),
    ]


def _cpu(facts: dict[str, Any]) -> list[Finding]:
    arch = platform.machine().lower()
    arm = arch in ("aarch64", "arm64")
    x86 = arch in ("x86_64", "amd64", "i386", "i686")
    present = _machine.cpu_features()
    # the JSON states every feature explicitly; those of the other ISA family are false
    facts["cpu_features"] = {k: bool(present.get(k, False)) for k in (*_machine.X86_FEATURES, *_machine.ARM_FEATURES)}
    flags_read = bool(_machine._cpuinfo()[1])
    out = []
    if (x86 or arm) and not flags_read:
        out.append(Finding("cpu features", "flags", "unreadable", "warn",
                           "could not read CPU flags from /proc/cpuinfo: ISA features below are reported as 'no'"))
    for key, has in present.items():
        status, fix = "ok", None
        if key == "avx2" and not has and flags_read:
            status, fix = "warn", "this x86 CPU lacks AVX2: PyTorch and ONNX Runtime fall back to slow kernels"
        if key == "neon" and not has and flags_read:
            status, fix = "warn", "no NEON/ASIMD reported: ARM kernels will be slow"
        out.append(Finding("cpu features", FEATURE_LABELS.get(key, key), "yes" if has else "no", status, fix))
    bf16 = bool(present.get("amx_bf16") or present.get("avx512_bf16") or present.get("bf16"))
    facts["int8_fast_path"] = _machine.int8_fast_path(present)
    facts["bf16_fast"] = bf16
    out.append(Finding("cpu features", "int8 fast path", facts["int8_fast_path"]))
    from ..quantization.precision import choose_precision

    plan = choose_precision("cpu", present)
    facts["int8_plan"] = {"cpu_class": plan.isa_class, "int8_format": plan.int8_format,
                          "int8_lowering": plan.int8_lowering, "reason": plan.reason}
    out.append(Finding("cpu features", "int8 layout", f"{plan.int8_format} via {plan.int8_lowering} — {plan.reason}"))
    out.append(Finding("cpu features", "bf16 fast", "yes (" + ("AMX-BF16" if present.get("amx_bf16") else
                       "AVX-512 BF16" if present.get("avx512_bf16") else "ARM BF16") + ")" if bf16 else "no"))
    return out


def _torch_cpu(facts: dict[str, Any]) -> Finding:
    import torch

    cap = facts["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return Finding("cpu features", "torch CPU kernels", cap)


def _dist_version(name: str) -> tuple[str | None, str | None]:
    """(installed distribution name, version) for a library, trying its known distribution names."""
    found = ((dist, _machine.version_of(dist)) for dist in DIST_NAMES.get(name, (name,)))
    return next(((dist, v) for dist, v in found if v is not None), (None, None))


def _libraries(facts: dict[str, Any]) -> list[Finding]:
    versions: dict[str, str | None] = {}
    out = []
    for name in (*CORE, *OPTIONAL):
        dist, v = _dist_version(name)
        if name == "torch" and "torch" in sys.modules:  # already imported by a probe: its own version string
            v = sys.modules["torch"].__version__
        versions[name] = v
        label = name if dist in (None, name) else f"{name} ({dist})"
        if v is None and name in CORE:
            out.append(Finding("libraries", label, "not installed", "error", CORE[name]))
        else:
            out.append(Finding("libraries", label, v or "not installed (optional)"))
    facts["versions"] = versions
    return out


def _ort_providers(facts: dict[str, Any]) -> Finding:
    import onnxruntime as ort

    providers = facts["onnxruntime_providers"] = list(ort.get_available_providers())
    return Finding("libraries", "onnxruntime providers", ", ".join(providers))


def _run(cmd: list[str], timeout: float = 20) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _driver() -> dict[str, Any]:
    """The NVIDIA driver: version, the highest CUDA it supports, its GPUs, and where that was read."""
    info: dict[str, Any] = {"version": None, "cuda": None, "gpus": [], "source": None}
    exe = shutil.which("nvidia-smi")
    query = _run([exe, "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"]) if exe else None
    if query:
        info["source"] = "nvidia-smi"
        for line in query.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3:
                info["version"] = parts[0]
                info["gpus"].append({"name": parts[1], "compute_capability": parts[2]})
        m = re.search(r"CUDA Version:\s*([0-9.]+)", _run([exe]) or "")
        info["cuda"] = m.group(1) if m else None
    elif os.path.exists("/proc/driver/nvidia/version"):
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as f:
            m = re.search(r"\b(\d{2,4}\.\d+(?:\.\d+)?)\b", f.readline())
        info["version"], info["source"] = (m.group(1) if m else "unknown"), "/proc/driver/nvidia/version"
    if info["version"] and not info["cuda"]:  # ask the driver library itself
        try:
            n = ctypes.c_int()
            if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(n)) == 0:
                info["cuda"] = f"{n.value // 1000}.{n.value % 1000 // 10}"
        except (OSError, AttributeError):
            pass
    return info


def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def _sm_supported(major: int, minor: int, arches: list[str]) -> bool:
    """Whether a torch build with these arches runs on a GPU of this compute capability."""
    cc = major * 10 + minor
    for arch in arches:
        m = re.fullmatch(r"(sm|compute)_(\d+)([a-z]?)", arch)
        if not m:
            continue
        kind, num, suffix = m.group(1), int(m.group(2)), m.group(3)
        if num == cc:
            return True
        if not suffix and num < cc and (kind == "compute" or num // 10 == major):  # PTX JIT, or same-major SASS
            return True
    return False


def _cuda(facts: dict[str, Any]) -> list[Finding]:
    drv = _driver()
    info: dict[str, Any] = {"available": False, "torch_cuda": None, "cudnn": None, "driver": drv["version"],
                            "driver_cuda": drv["cuda"], "driver_source": drv["source"], "gpus": []}
    facts["cuda"] = info
    out = [Finding("cuda", "driver", f"{drv['version']} (supports CUDA {drv['cuda'] or '?'}; from {drv['source']})"
                   if drv["version"] else "no driver")]
    import torch

    built = info["torch_cuda"] = torch.version.cuda
    available = info["available"] = torch.cuda.is_available()
    out.append(Finding("cuda", "torch built for CUDA", built or "no (CPU-only build)"))
    if not available and not drv["version"]:
        out.append(Finding("cuda", "GPU", "no CUDA device (CPU only)"))
        return out
    if built and drv["cuda"]:
        have, need = _ver(drv["cuda"]), _ver(built)
        if have[:1] < need[:1]:
            out.append(Finding("cuda", "driver vs torch CUDA", f"driver supports CUDA {drv['cuda']} < torch's {built}",
                               "error", f"upgrade the NVIDIA driver to one for CUDA {built}, "
                               f"or install a torch built for CUDA {drv['cuda']} or older"))
        elif have < need:
            out.append(Finding("cuda", "driver vs torch CUDA", f"driver CUDA {drv['cuda']} < torch's {built} "
                               "(same major: minor-version compatibility)", "warn",
                               f"upgrade the NVIDIA driver to one for CUDA {built}; PTX JIT and newer features may fail"))
        else:
            out.append(Finding("cuda", "driver vs torch CUDA", f"ok (driver CUDA {drv['cuda']} >= torch's {built})"))
    if not built:
        out.append(Finding("cuda", "torch.cuda.is_available()", "False (torch is a CPU-only build)", "warn",
                           "pip install torch --index-url https://download.pytorch.org/whl/cu130 (pick your CUDA)"))
        return out
    cudnn = info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    out.append(Finding("cuda", "cuDNN", str(cudnn) if cudnn else "not available", "ok" if cudnn else "warn",
                       None if cudnn else "cuDNN not found: pip install nvidia-cudnn-cu13 (match torch's CUDA major)"))
    if not available:
        out.append(Finding("cuda", "torch.cuda.is_available()", "False", "error",
                           "an NVIDIA driver is present but torch cannot use a GPU: check `nvidia-smi`, "
                           "CUDA_VISIBLE_DEVICES and the driver version above"))
        return out
    arches = info["arch_list"] = torch.cuda.get_arch_list()
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        props = torch.cuda.get_device_properties(i)
        sm, ok = f"sm_{major}{minor}", _sm_supported(major, minor, arches)
        info["gpus"].append({"index": i, "name": props.name, "compute_capability": f"{major}.{minor}",
                             "supported_by_torch": ok, "memory_gb": round(props.total_memory / 2**30, 1)})
        out.append(Finding("cuda", f"GPU {i}", f"{props.name}, {round(props.total_memory / 2**30, 1)} GB, "
                           f"compute capability {major}.{minor} ({sm}: {'in' if ok else 'NOT in'} torch's arch list)",
                           "ok" if ok else "error",
                           None if ok else f"this torch has kernels for {', '.join(arches)}; install a build for {sm}"))
    return out


def _torch_compile(facts: dict[str, Any], timeout: float) -> list[Finding]:
    """Compile ``x * 2 + 1`` in a fresh interpreter (so a hang or crash cannot take the report with it)."""
    no_cc = not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++"))
    cc_fix = "install a C/C++ compiler (apt-get install gcc g++) and the Python headers (python3-dev)"
    try:
        proc = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        facts["torch_compile"] = {"cpu": {"ok": False, "error": f"timeout after {timeout:g} s"}}
        return [Finding("torch", "torch.compile", f"did not finish in {timeout:g} s", "error",
                        "rerun `deepseek doctor` (a warm cache is faster); if it hangs again use --fast and report it")]
    try:
        results = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        facts["torch_compile"] = {"cpu": {"ok": False, "error": tail[-1] if tail else f"exit {proc.returncode}"}}
        return [Finding("torch", "torch.compile", f"probe crashed: {(tail[-1] if tail else proc.returncode)!s:.200}",
                        "error", cc_fix if no_cc else "run the probe by hand with TORCH_LOGS=+inductor for details")]
    facts["torch_compile"] = results
    out = []
    for dev, r in results.items():
        name = "torch.compile" if dev == "cpu" else f"torch.compile ({dev})"
        if r["ok"]:
            out.append(Finding("torch", name, f"works ({r['seconds']} s to compile and run)"))
            continue
        err = r.get("error", "")
        if not err:
            fix = "torch.compile differs from eager: report it to PyTorch with this output"
        elif dev == "cpu" and (no_cc or "compiler" in err.lower() or "Python.h" in err):
            fix = cc_fix
        elif dev != "cpu":
            fix = "torch.compile on GPU needs triton matching torch: pip install triton (the version torch pins)"
        else:
            fix = "rerun with TORCH_LOGS=+inductor for details; deepseek falls back to eager where it can"
        out.append(Finding("torch", name, f"fails: {_first_line(err) if err else 'wrong results'}", "error", fix))
    return out


def _deploy_tools(facts: dict[str, Any]) -> list[Finding]:
    gxx, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    sysroot = os.path.isdir("/usr/aarch64-linux-gnu")
    facts["arm64_toolchain"] = {"cross_gxx": gxx, "qemu_aarch64": qemu, "sysroot": sysroot}
    found = (("aarch64-linux-gnu-g++", gxx), ("qemu-aarch64", qemu),
             ("arm64 sysroot", "/usr/aarch64-linux-gnu" if sysroot else None))
    return [Finding("deploy", name, value) if value else Finding("deploy", name, "missing", "warn", CROSS_FIX)
            for name, value in found]


def _offline(facts: dict[str, Any]) -> list[Finding]:
    from .. import assets

    hf = os.environ.get("HF_HUB_OFFLINE")
    offline = (hf or "").strip().lower() in ("1", "true", "yes", "on")
    facts["hf_hub_offline"] = offline
    found = facts["assets"] = assets.available()
    missing = [k for k, v in found.items() if not v]
    return [
        Finding("offline", "HF_HUB_OFFLINE", f"{hf} (no Hub downloads)" if offline else
                "not set (the deepseek command sets it; library calls could reach the Hub)"),
        Finding("offline", "data and weights", f"{len(found) - len(missing)}/{len(found)} present"
                + (f" (missing: {', '.join(missing)})" if missing else ""), "warn" if missing else "ok",
                "; ".join(dict.fromkeys(assets.ASSETS[m] for m in missing)) or None),
    ]


def doctor(check_compile: bool = True, compile_timeout: float = COMPILE_TIMEOUT_S) -> Report:
    """Probe this machine and return its report.

    ``check_compile`` really runs torch.compile (10-30 s cold), in a child process stopped after
    ``compile_timeout`` seconds.
    """
    from .. import __version__
    from .._core.checks import check_flag, check_number

    check_flag(check_compile, "check_compile")
    check_number(compile_timeout, "compile_timeout", above=0, expected="a finite number of seconds > 0")
    facts: dict[str, Any] = {"deepseek": __version__,
                             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    findings: list[Finding] = []
    _probe(findings, "system", "system", lambda: _system(facts))
    _probe(findings, "cpu features", "cpu features", lambda: _cpu(facts))
    _probe(findings, "cpu features", "torch CPU kernels", lambda: _torch_cpu(facts))
    _probe(findings, "libraries", "libraries", lambda: _libraries(facts))
    if facts.get("versions", {}).get("onnxruntime"):
        _probe(findings, "libraries", "onnxruntime providers", lambda: _ort_providers(facts))
    if facts.get("versions", {}).get("torch"):
        _probe(findings, "cuda", "cuda", lambda: _cuda(facts))
        if check_compile:
            _probe(findings, "torch", "torch.compile", lambda: _torch_compile(facts, compile_timeout))
    _probe(findings, "deploy", "arm64 tools", lambda: _deploy_tools(facts))
    _probe(findings, "offline", "offline", lambda: _offline(facts))
    return Report(findings, facts)


def render(report: Report, console: Any) -> None:
    """Print the report as a header line, a table grouped by section, and a one-line summary."""
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "error": "bold red"}
    facts = report.facts
    console.print(f"deepseek {facts.get('deepseek', '?')} doctor — {facts.get('date', '')}", highlight=False)
    table = Table(show_lines=False)
    for column in ("section", "check", "value", "status", "fix"):
        wide = {"value": 3, "fix": 2}.get(column)
        table.add_column(column, **({"overflow": "fold", "ratio": wide} if wide else {"no_wrap": True}))
    last = None
    for f in report.findings:
        if last is not None and f.section != last:
            table.add_section()
        table.add_row(f.section if f.section != last else "", f.name, str(f.value),
                      f"[{colour[f.status]}]{f.status}[/]", f.fix or "")
        last = f.section
    console.print(table)
    d = report.to_dict()
    console.print(f"{d['errors']} error(s), {d['warnings']} warning(s)", highlight=False)
