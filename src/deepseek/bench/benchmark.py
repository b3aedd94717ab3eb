"""``deepseek.benchmark``: latency, throughput, memory and size of a model on several backends, in one run."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pickle
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core import machine as _machine
from .._core.checks import check_choice, check_int
from .._core.errors import ArtifactError, DeepSeekError, InvalidArgumentError, MissingDependencyError, invalid
from .._core.tensors import as_input_tuple, to_numpy
from .._core.timing import LatencyStats
from ..runtime.backends import ALIASES, canonical_backend
from .worker import run_job

# peers we accept by name but do not run yet: the row says why
PEERS = {"tvm": ("tvm", "pip install apache-tvm")}
# backends that run an ONNX export of the model (ONNX files run on them as they are)
_ONNX_BACKENDS = ("onnxruntime", "openvino")
# ways to decode a causal language model, beside "eager" and "compile" (a static KV cache + torch.compile)
GENERATION_VARIANTS = {
    "int8": "weight-only int8 Linear layers (groups of 32)",
    "int4": "weight-only int4 Linear layers (groups of 32)",
    "kv-int8": "an int8 KV cache (per head and token; 16 newest tokens in float)",
    "kv-int4": "an int4 KV cache (groups of 32 channels where the head has them; 16 newest tokens in float)",
}
DEFAULT_BACKENDS = ("eager", "onnxruntime")
DEFAULT_GENERATION_BACKENDS = ("eager", "compile", "int4", "kv-int8")


@dataclasses.dataclass(frozen=True)
class BenchmarkRow:
    """One backend at one batch size."""

    backend: str
    batch_size: int
    status: str  # "ok" | "error" | "skipped"
    reason: str | None = None
    latency: LatencyStats | None = None
    throughput: float | None = None  # items/s (images, sequences) at the median latency
    tokens_per_s: float | None = None  # generation models
    peak_rss_mb: float | None = None
    rss_before_mb: float | None = None
    memory_method: str | None = None
    artifact_mb: float | None = None
    setup_s: float | None = None  # first call: compilation / session creation
    speedup: float | None = None  # baseline median / this median, same batch size
    max_abs_diff: float | None = None  # vs the baseline's outputs on the same inputs
    isolated: bool | None = None
    threads: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def median_ms(self) -> float | None:
        return None if self.latency is None else self.latency.median_ms

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        lat = d.pop("latency") or {}
        flat = {k: d[k] for k in ("backend", "batch_size", "status", "reason")}
        flat.update(lat)
        flat.update({k: v for k, v in d.items() if k not in flat})
        return flat


@dataclasses.dataclass(frozen=True)
class BenchmarkResult:
    """All rows of one run, with the machine and model they were measured on."""

    model: dict[str, Any]
    baseline: str
    rows: list[BenchmarkRow]
    machine: dict[str, Any]

    def row(self, backend: str, batch_size: int) -> BenchmarkRow:
        name = _backend_name(backend)
        for r in self.rows:
            if r.backend == name and r.batch_size == batch_size:
                return r
        raise invalid("backend/batch_size", (backend, batch_size), f"one of {[(r.backend, r.batch_size) for r in self.rows]}")

    def speedup(self, backend: str, batch_size: int) -> float | None:
        return self.row(backend, batch_size).speedup

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "baseline": self.baseline, "machine": self.machine,
                "rows": [r.to_dict() for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (never over the benchmarked model file)."""
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path", inputs=self._inputs())
        return write_text(path, self.to_json() + "\n")

    def _inputs(self) -> tuple[str, ...]:
        return (str(self.model["file"]),) if self.model.get("file") else ()

    def with_rows_of(self, other: BenchmarkResult, label: str) -> BenchmarkResult:
        """This result plus the ok rows of ``other`` (another artifact of the same model measured in the same run,
        e.g. its INT8 version) as backend ``label``, their speedups recomputed against this result's baseline at
        the same batch size (their max |diff| was against another baseline, so it is dropped)."""
        base = {r.batch_size: r.median_ms for r in self.rows if r.backend == self.baseline and r.status == "ok"}
        added = [dataclasses.replace(r, backend=label, max_abs_diff=None,
                                     speedup=base[r.batch_size] / r.median_ms if base.get(r.batch_size) and r.median_ms
                                     else None) for r in other.rows if r.status == "ok"]
        return dataclasses.replace(self, rows=[*self.rows, *added])

    def table(self) -> Any:
        from .report import benchmark_table

        return benchmark_table(self)

    def plot(self, path: str | Path) -> Path:
        """Write a PNG chart of latency and peak memory to ``path`` atomically (never over the model file)."""
        from .._core.atomic import check_output
        from .report import benchmark_plot

        check_output(path, argument="path", inputs=self._inputs())
        return benchmark_plot(self, path)


_DEVICES = ("cpu", "cuda", "tensorrt")
_TORCH_BACKENDS = ("eager", "compile", *GENERATION_VARIANTS)


def _backend_name(name: str, argument: str = "backends") -> str:
    if not isinstance(name, str):
        raise invalid(argument, name, "a backend name")
    key = name.strip().lower()
    if key in PEERS or key in GENERATION_VARIANTS:
        return key
    try:
        return canonical_backend(key)
    except InvalidArgumentError:
        known = sorted({*ALIASES.values(), *PEERS, *GENERATION_VARIANTS})
        raise invalid(argument, name, f"one of {known} (aliases: {sorted(set(ALIASES) - set(ALIASES.values()))})") \
            from None


def _backend_list(backends: Any) -> list[str]:
    """``backends`` as canonical names: a list of names (or one comma-separated string), each once."""
    if isinstance(backends, str):
        backends = [b for b in backends.split(",") if b.strip()]
    if not isinstance(backends, (list, tuple)):
        raise invalid("backends", backends, "a list of backend names, e.g. ['eager', 'onnxruntime']")
    names = [_backend_name(b) for b in backends]
    if not names:
        raise invalid("backends", list(backends), "at least one backend")
    if len(set(names)) != len(names):
        raise invalid("backends", list(backends), "each backend once")
    return names


def _batch_sizes(batch_sizes: Any) -> list[int]:
    if isinstance(batch_sizes, (int, np.integer)) and not isinstance(batch_sizes, bool):
        batch_sizes = [batch_sizes]
    if not isinstance(batch_sizes, (list, tuple)) or not batch_sizes or \
            any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1 for b in batch_sizes):
        raise invalid("batch_sizes", batch_sizes, "a list of positive integers, e.g. [1, 8]")
    return [int(b) for b in batch_sizes]


def _check_model_argument(model: Any) -> None:
    """A file that exists must be a readable model (one line naming it if not); a name must be a built-in."""
    if isinstance(model, Path) or (isinstance(model, str) and Path(model).exists()):
        check_model_file(Path(model))
    elif isinstance(model, str):
        from .. import models

        models.resolve_name(model)
    elif not hasattr(model, "parameters"):
        raise invalid("model", type(model).__name__, "an nn.Module, a model file or a built-in model name")


def check_model_file(path: Path) -> str:
    """The kind of the model file at ``path``; an :class:`ArtifactError` naming it when it is empty, corrupt or
    truncated (ONNX files and .pt2 archives are parsed here, before any process starts)."""
    from ..runtime.artifacts import KINDS, detect_kind

    if not path.exists():
        raise invalid("model", str(path), "an existing model file or a built-in model name")
    if path.is_file() and path.stat().st_size == 0:
        raise ArtifactError(f"model: {path} is an empty file, not a model")
    kind = detect_kind(path)
    if kind == "onnx":
        _check_onnx(path)
    elif kind in ("exported_program", "aoti_package", "torchscript") and not zipfile.is_zipfile(path):
        raise ArtifactError(f"model: {path} is not a readable {KINDS[kind]} (not a zip archive: truncated or "
                            "not written by torch)")
    return kind


def _check_onnx(path: Path) -> None:
    try:
        import onnx
    except ImportError:
        return  # onnxruntime reports an unreadable file when it loads it
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ArtifactError(f"model: {path} is not a readable ONNX file ({type(exc).__name__}: {first})") from exc
    if not proto.graph.node and not proto.graph.output:
        raise ArtifactError(f"model: {path} is not an ONNX model (no graph inside)")


def _check_device(device: str, names: list[str]) -> None:
    """``device`` must be usable by every backend in ``names`` on this machine."""
    runnable = [n for n in names if n not in PEERS]
    if device == "cpu" or not runnable:
        return
    if "openvino" in runnable:
        raise invalid("device", device, "'cpu' for the openvino backend (its GPU plugin targets Intel GPUs)")
    torch_backends = [n for n in runnable if n in _TORCH_BACKENDS]
    if device == "tensorrt" and torch_backends:
        raise invalid("device", device, f"'cpu' or 'cuda' for PyTorch backends {torch_backends} "
                                        "('tensorrt' runs ONNX Runtime only: backends=['onnxruntime'])")
    if "onnxruntime" in runnable:
        provider = "TensorrtExecutionProvider" if device == "tensorrt" else "CUDAExecutionProvider"
        try:
            import onnxruntime as ort

            available = ort.get_available_providers()
        except ImportError:
            available = []
        if provider not in available:
            raise MissingDependencyError(f"device: {device!r} needs ONNX Runtime's {provider}, which is not available "
                                         f"here (has {available}); install onnxruntime-gpu"
                                         + (" and TensorRT" if device == "tensorrt" else "") + " on a GPU machine")
    if torch_backends:
        import torch

        if not torch.cuda.is_available():
            raise MissingDependencyError(f"device: 'cuda' needs a CUDA device for {torch_backends}, and torch sees none "
                                         "(run deepseek doctor)")


def benchmark(
    model: Any,
    inputs: Any = None,
    *,
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    baseline: str | None = None,
    warmup: int = 5,
    runs: int = 30,
    threads: int | None = None,
    device: str = "cpu",
    isolate: bool = True,
    arch: str | None = None,
    trust_pickle: bool = False,
    new_tokens: int = 32,
    progress: bool = True,
) -> BenchmarkResult:
    """Measure ``model`` on each backend and batch size, in one run, against ``baseline``.

    ``model`` is an ``nn.Module``, a model file, or a built-in name (``resnet50``, ``mobilenet_v2``,
    ``bert-base``, ``gpt2``). ``inputs`` are example inputs (built-in models bring their own); they are
    re-batched along dimension 0 to each of ``batch_sizes``. With ``isolate`` every measurement runs in a
    fresh process, so peak memory is that backend's own. Speedups are against ``baseline`` (default: the
    first backend). Generation models (causal LMs: ``gpt2``, ``smollm2``, or any model with ``generate``) report
    tokens/s of greedy decoding and the share of generated tokens equal to the baseline's; their backends are
    ``eager``, ``compile`` (a static KV cache + ``torch.compile``) and the variants in :data:`GENERATION_VARIANTS`
    (weight-only ``int8``/``int4``, compressed ``kv-int8``/``kv-int4`` caches). ``backends`` default:
    ``eager,onnxruntime``, or ``eager,compile,int4,kv-int8`` for a generation model.
    """
    # every argument is checked before the model is loaded or anything is measured
    check_int(warmup, "warmup", minimum=0)
    check_int(runs, "runs", minimum=1)
    check_int(new_tokens, "new_tokens", minimum=1)
    check_int(threads, "threads", minimum=1, optional=True, expected="an integer >= 1")
    requested = _backend_list(backends) if backends is not None else None
    if baseline is not None:
        baseline = _backend_name(baseline, "baseline")
        if requested is not None and baseline not in requested:
            raise invalid("baseline", baseline, f"one of the benchmarked backends {requested}")
    sizes = _batch_sizes(batch_sizes) if batch_sizes is not None else None
    check_choice(device, "device", _DEVICES, expected=f"one of {list(_DEVICES)}")
    _check_model_argument(model)
    if requested is not None:
        _check_device(device, requested)

    source, examples, info, input_names = _resolve(model, inputs, arch, trust_pickle)
    generate = info.get("task") == "causal-lm"
    names = requested if requested is not None else ["openvino"] if source["kind"] == "openvino_ir" else \
        list(DEFAULT_GENERATION_BACKENDS if generate else DEFAULT_BACKENDS)
    baseline = baseline if baseline is not None else names[0]
    if baseline not in names:
        raise invalid("baseline", baseline, f"one of the benchmarked backends {names}")
    if requested is None:
        _check_device(device, names)
    threads = threads or _machine.physical_cores()
    if sizes is None:
        sizes = [int(np.shape(to_numpy(examples[0]))[0]) if np.ndim(to_numpy(examples[0])) else 1]

    with tempfile.TemporaryDirectory(prefix="deepseek-bench-", ignore_cleanup_errors=True) as folder:
        workdir = Path(folder)
        plan = _plan(names, sizes, source, examples, input_names, workdir, generate=generate, isolate=isolate,
                     threads=threads, warmup=warmup, runs=runs, device=device, new_tokens=new_tokens)
        raw = _execute(plan, progress=progress)
        rows = _rows(plan, raw, baseline, threads)
    return BenchmarkResult(model=info, baseline=baseline or "", rows=rows, machine=_machine.summary(threads))


def _resolve(model: Any, inputs: Any, arch: str | None, trust_pickle: bool) -> tuple[dict[str, Any], tuple[Any, ...], dict[str, Any], list[str] | None]:
    """→ (source description, example inputs, model info, input names)."""
    from .. import models

    if isinstance(model, str) and not Path(model).exists():
        spec = models.get(model)
        examples = as_input_tuple(inputs, "inputs") if inputs is not None else spec.example_inputs(1)
        info = {"name": spec.name, "task": spec.task, "real_weights": spec.real_weights,
                "parameters": sum(p.numel() for p in spec.model.parameters())}
        if inputs is not None and spec.task != "causal-lm":
            trial_forward(spec.model, examples)
        return {"kind": "module", "module": spec.model}, examples, info, list(spec.input_names)
    if isinstance(model, (str, Path)):
        from ..runtime.artifacts import detect_kind

        path = Path(model)
        kind = detect_kind(path)
        if inputs is None:
            inputs = _inputs_from_file(path, kind)
        if kind not in ("onnx", "exported_program", "openvino_ir"):  # arch, trust_pickle and the file are checked here
            from ..runtime.artifacts import load_module

            module = load_module(path, kind, arch=arch, trust_pickle=trust_pickle)
            if inputs is not None and hasattr(module, "parameters"):
                trial_forward(module, as_input_tuple(inputs, "inputs"))
            del module
        if inputs is None:
            raise invalid("inputs", None, f"example inputs for {path.name} (its input shapes are not fixed in the file)")
        _check_inputs(path, kind, as_input_tuple(inputs, "inputs"))
        info = {"name": path.name, "task": "forward", "file": str(path), "kind": kind}
        source = {"kind": kind if kind in ("onnx", "openvino_ir") else "file", "path": str(path), "arch": arch,
                  "trust_pickle": trust_pickle}
        return source, as_input_tuple(inputs, "inputs"), info, None
    import torch

    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "an nn.Module, a model file or a built-in model name")
    if inputs is None:
        raise invalid("inputs", None, "example inputs for the model" + (" (prompt token ids)" if
                                                                        _is_causal_lm(model) else ""))
    info = {"name": type(model).__name__, "task": "causal-lm" if _is_causal_lm(model) else "forward",
            "parameters": sum(p.numel() for p in model.parameters())}
    if info["task"] == "forward":
        trial_forward(model.eval(), as_input_tuple(inputs, "inputs"))
    return {"kind": "module", "module": model.eval()}, as_input_tuple(inputs, "inputs"), info, None


def trial_forward(module: Any, examples: tuple[Any, ...]) -> None:
    """One call of ``module`` on ``examples``: inputs the model cannot take fail here, in one line
    naming ``inputs``, before anything is measured."""
    import torch

    from .._core.tensors import to_torch

    try:
        with torch.inference_mode():
            module(*(to_torch(e) for e in examples))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        shapes = [tuple(np.shape(to_numpy(e))) for e in examples]
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise invalid("inputs", shapes, f"inputs the model accepts ({type(exc).__name__}: {first})") from exc


def _is_causal_lm(model: Any) -> bool:
    """A Hugging Face causal language model (it can ``generate``): benchmarked by decoding, not one forward."""
    config = getattr(model, "config", None)
    return callable(getattr(model, "generate", None)) and config is not None and \
        getattr(config, "is_encoder_decoder", False) is False and hasattr(model, "lm_head")


def _inputs_from_file(path: Path, kind: str) -> tuple[np.ndarray, ...] | None:
    """Random inputs (seed 0) of the shapes a file fixes; None when a dimension is symbolic."""
    from ..runtime import load

    specs = load(path, arch=None).input_specs if kind in ("onnx", "exported_program", "openvino_ir") else None
    if not specs or any(d is None for s in specs for d in s.shape[1:]):
        return None
    rng = np.random.default_rng(0)
    shapes = [(s, tuple(1 if d is None else d for d in s.shape)) for s in specs]
    return tuple(rng.integers(0, 100, shape).astype(s.dtype) if np.dtype(s.dtype).kind in "iu"
                 else rng.standard_normal(shape).astype(s.dtype) for s, shape in shapes)


def _check_inputs(path: Path, kind: str, inputs: tuple[Any, ...]) -> None:
    """Wrong input shapes for a file that fixes them fail here, before any process starts."""
    if kind not in ("onnx", "exported_program", "openvino_ir"):
        return
    from ..runtime import load

    specs = load(path).input_specs or []
    if len(specs) != len(inputs):
        raise invalid("inputs", f"{len(inputs)} input(s)", f"{len(specs)}: {[s.name for s in specs]}")
    for i, (spec, value) in enumerate(zip(specs, inputs)):
        spec.check(i, value)


def rebatch(x: np.ndarray, batch: int) -> np.ndarray:
    """Repeat or slice ``x`` along dimension 0 to ``batch`` rows."""
    reps = -(-batch // x.shape[0])
    return np.ascontiguousarray(np.concatenate([x] * reps, axis=0)[:batch])


def _plan(names: list[str], sizes: list[int], source: dict[str, Any], examples: tuple[Any, ...],
          input_names: list[str] | None, workdir: Path, *, generate: bool, isolate: bool, **common: Any) -> list[dict[str, Any]]:
    arrays = [to_numpy(e) for e in examples]
    module = source.get("module")
    torch_source = source
    isolated = isolate
    if module is not None:
        path = workdir / "model.pkl"
        try:
            import torch

            torch.save(module, path)
            torch_source = {"kind": "pickle", "path": str(path)}
        except (pickle.PicklingError, AttributeError, TypeError):
            torch_source, isolated = {"kind": "object", "module": module}, False  # a local class: measure in-process
    onnx_source: dict[str, Any] | None = source if source["kind"] == "onnx" else None

    jobs = []
    for name in names:
        for b in sizes:
            job: dict[str, Any] = {"backend": name, "batch_size": b, **common}
            if name in PEERS:
                dist, hint = PEERS[name]
                job["skip"] = f"{name} not installed ({hint})" if importlib.util.find_spec(dist) is None else \
                    f"{name} is installed but not yet supported by deepseek.benchmark"
            elif name in GENERATION_VARIANTS and not generate:
                job["skip"] = f"{name} ({GENERATION_VARIANTS[name]}) is a way to decode a causal language model"
            elif generate and name in _ONNX_BACKENDS:
                job["skip"] = f"generation on {name} needs a KV-cache export, which deepseek does not build yet"
            elif name == "openvino" and importlib.util.find_spec("openvino") is None:
                from ..runtime.openvino_backend import INSTALL_HINT

                job["skip"] = f"openvino is not installed ({INSTALL_HINT})"
            elif source["kind"] == "openvino_ir":
                if name == "openvino":
                    job["source"] = source
                else:
                    job["skip"] = f"an OpenVINO IR runs on openvino, not {name}"
            elif name in _ONNX_BACKENDS:
                if onnx_source is None:
                    onnx_source = _export_for_ort(module if module is not None else source, examples, input_names, workdir)
                job["source"] = onnx_source
            elif source["kind"] == "onnx":
                job["skip"] = f"an ONNX file runs on onnxruntime or openvino, not {name}"
            else:
                job["source"] = torch_source
            job["task"] = "generate" if generate else "forward"
            if generate:
                job["prompt_tokens"] = int(np.shape(arrays[0])[-1])
            inputs = [rebatch(a, b) for a in arrays]
            if (isolated and torch_source.get("kind") != "object") or name in _ONNX_BACKENDS:
                job["isolated"] = isolate
                job["inputs"] = [str(workdir / f"in_{name}_{b}_{i}.npy") for i in range(len(inputs))]
                for p, a in zip(job["inputs"], inputs):
                    np.save(p, a, allow_pickle=False)
                job["outputs_path"] = str(workdir / f"out_{name}_{b}.npy")
            else:
                job["isolated"] = False
                job["inputs"] = inputs
                job["return_outputs"] = True
            jobs.append(job)
    return jobs


def _export_for_ort(module_or_source: Any, examples: tuple[Any, ...], input_names: list[str] | None, workdir: Path) -> dict[str, Any]:
    from ..runtime.onnx_export import export_onnx

    if isinstance(module_or_source, dict):  # a torch file: load it as the runtime does, then export
        from ..runtime.artifacts import detect_kind, load_exported_program, load_module

        path = Path(module_or_source["path"])
        kind = detect_kind(path)
        module = load_exported_program(path) if kind == "exported_program" else load_module(
            path, kind, arch=module_or_source.get("arch"),
            trust_pickle=module_or_source.get("trust_pickle", False))
    else:
        module = module_or_source
    import torch

    first = tuple(torch.from_numpy(np.ascontiguousarray(to_numpy(e)[:1])) for e in examples)
    result = export_onnx(module, first, workdir / "model.onnx", input_names=input_names)
    return {"kind": "onnx", "path": str(result.path)}


def _execute(jobs: list[dict[str, Any]], *, progress: bool) -> list[dict[str, Any]]:
    from .._core.progress import progress as make_progress

    results: list[dict[str, Any]] = []
    with make_progress(transient=True) as bar:
        task = bar.add_task("benchmark", total=len(jobs), visible=progress)
        for job in jobs:
            bar.update(task, description=f"{job['backend']} batch {job['batch_size']}")
            if "skip" in job:
                results.append({"status": "skipped", "reason": job["skip"]})
            elif job["isolated"]:
                results.append(_run_isolated(job))
            else:
                results.append(run_job(job))
            bar.advance(task)
    return results


def _run_isolated(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh ``python -m deepseek.bench.worker`` process; its peak memory is its own."""
    from .._core.child import run_child

    try:  # the caller's import path, so a pickled model's classes resolve as they do here (what spawn does too)
        return run_child("deepseek.bench.worker", job, what=f"{job['backend']} at batch {job['batch_size']}",
                         import_path=True)
    except DeepSeekError as exc:
        return {"status": "error", "reason": str(exc)}


def _rows(jobs: list[dict[str, Any]], raw: list[dict[str, Any]], baseline: str | None, threads: int) -> list[BenchmarkRow]:
    outputs: dict[tuple[str, int], np.ndarray] = {}
    for job, res in zip(jobs, raw):
        if res.get("status") == "ok":
            if job.get("outputs_path") and Path(job["outputs_path"]).exists():
                outputs[(job["backend"], job["batch_size"])] = np.load(job["outputs_path"], allow_pickle=False)
            elif "outputs" in job:
                outputs[(job["backend"], job["batch_size"])] = np.asarray(job["outputs"])
    medians = {(j["backend"], j["batch_size"]): r["latency"]["median_ms"] for j, r in zip(jobs, raw) if r.get("status") == "ok"}
    rows = []
    for job, res in zip(jobs, raw):
        key = (job["backend"], job["batch_size"])
        if res.get("status") != "ok":
            rows.append(BenchmarkRow(job["backend"], job["batch_size"], res.get("status", "error"), reason=res.get("reason"),
                                     threads=threads, extra={k: v for k, v in res.items() if k == "traceback"}))
            continue
        stats = LatencyStats(**res["latency"])
        base = (baseline, job["batch_size"])
        speed = medians[base] / stats.median_ms if base in medians else None
        diff = None
        generate = job.get("task") == "generate"
        extra = {k: res[k] for k in ("providers", "torch_imported", "tokens_per_call", "peak_cuda_mb")
                 if res.get(k) is not None}
        if base in outputs and key in outputs:
            a, b = outputs[base], outputs[key]
            if generate and a.shape == b.shape:  # the share of generated token ids equal to the baseline's
                new = slice(job["prompt_tokens"], None)
                extra["tokens_same_as_baseline"] = float(np.mean(a[:, new] == b[:, new]))
            elif not generate:
                diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.shape == b.shape else None
        rows.append(BenchmarkRow(
            backend=job["backend"], batch_size=job["batch_size"], status="ok", latency=stats,
            throughput=None if generate else stats.throughput(job["batch_size"]),
            tokens_per_s=res.get("tokens_per_s"), peak_rss_mb=res["peak_rss_mb"], rss_before_mb=res["rss_before_mb"],
            memory_method=res["memory_method"], artifact_mb=res["artifact_bytes"] / 1e6, setup_s=res["setup_s"],
            speedup=speed, max_abs_diff=diff, isolated=job["isolated"], threads=threads, extra=extra,
        ))
    return rows
