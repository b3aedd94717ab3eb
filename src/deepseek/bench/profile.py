"""``deepseek profile``: where a model's time goes, per operator and per layer.

PyTorch backends use ``torch.profiler`` (operators from ``key_averages``; layers from ``record_function``
ranges opened by module hooks). ONNX Runtime uses its own profiler (per node kernel time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_int
from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class OpTime:
    """Self time of one operator type, per run."""

    name: str
    calls: int
    ms_per_run: float
    share: float  # percent of the total operator self time


@dataclasses.dataclass(frozen=True)
class LayerTime:
    """Time spent inside one leaf layer (module or ONNX node), per run."""

    name: str
    type: str
    ms_per_run: float
    share: float
    params: int | None = None


@dataclasses.dataclass(frozen=True)
class ProfileResult:
    model: str
    backend: str
    batch_size: int
    runs: int
    total_ms_per_run: float
    operators: list[OpTime]
    layers: list[LayerTime]
    file: str | None = dataclasses.field(default=None, repr=False, compare=False)  # the profiled model file

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("file")
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (never over the profiled model file)."""
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path", inputs=(self.file,) if self.file else ())
        return write_text(path, self.to_json() + "\n")

    def summary(self) -> str:
        ops = ", ".join(f"{o.name} {o.share:.0f}%" for o in self.operators[:3])
        layers = ", ".join(f"{ly.name} ({ly.type}) {ly.share:.0f}%" for ly in self.layers[:3])
        return (f"{self.model} on {self.backend}, batch {self.batch_size}: {self.total_ms_per_run:.2f} ms per run "
                f"of operator time. Top operators: {ops}. Top layers: {layers}.")

    def table(self, kind: str = "operators", top: int = 15) -> Any:
        from .._core.table import Table

        check_choice(kind, "kind", ("operators", "layers"), expected="'operators' or 'layers'")
        check_int(top, "top", minimum=1, expected="a positive integer")
        table = Table(title=f"{kind} — {self.model} on {self.backend}, batch {self.batch_size}", title_justify="left")
        if kind == "operators":
            for col in ("operator", "calls/run", "ms/run", "share"):
                table.add_column(col, justify="left" if col == "operator" else "right")
            for o in self.operators[:top]:
                table.add_row(o.name, f"{o.calls / self.runs:g}", f"{o.ms_per_run:.3f}", f"{o.share:.1f}%")
        else:
            for col in ("layer", "type", "ms/run", "share", "params"):
                table.add_column(col, justify="left" if col in ("layer", "type") else "right")
            for ly in self.layers[:top]:
                table.add_row(ly.name, ly.type, f"{ly.ms_per_run:.3f}", f"{ly.share:.1f}%", "" if ly.params is None else f"{ly.params:,}")
        return table

    def plot(self, path: str | Path, top: int = 12) -> Path:
        """Write a PNG chart of the ``top`` operators and layers to ``path`` atomically."""
        from .._core.atomic import check_output

        check_int(top, "top", minimum=1, expected="a positive integer")
        check_output(path, argument="path", inputs=(self.file,) if self.file else ())
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .._core.atomic import atomic_path

        fig, axes = plt.subplots(1, 2, figsize=(12, max(3.5, 0.32 * top + 1.2)))
        for ax, items, title in ((axes[0], self.operators[:top], "operators"), (axes[1], self.layers[:top], "layers")):
            labels = [i.name if len(i.name) <= 40 else "…" + i.name[-39:] for i in items][::-1]
            ax.barh(labels, [i.share for i in items][::-1], color="C0" if title == "operators" else "C1")
            ax.set_xlabel("share of time (%)")
            ax.set_title(f"top {title}", fontsize=10)
            ax.tick_params(axis="y", labelsize=8)
        fig.suptitle(f"{self.model} on {self.backend}, batch {self.batch_size}: {self.total_ms_per_run:.2f} ms/run", fontsize=11)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        return Path(path)


def profile(model: Any, inputs: Any = None, *, backend: str | None = None, batch_size: int = 1, runs: int = 10,
            warmup: int = 3, arch: str | None = None, trust_pickle: bool = False) -> ProfileResult:
    """Profile ``model`` (module, file or built-in name) on ``backend`` and attribute the time.

    ``backend`` is ``eager``, ``compile`` or ``onnxruntime`` (default: ``onnxruntime`` for an ONNX file, ``eager``
    otherwise)."""
    from ..runtime import canonical_backend, load
    from .benchmark import _check_inputs, _check_model_argument, rebatch

    if backend is not None and not isinstance(backend, str):
        raise invalid("backend", backend, "a backend name: 'eager', 'compile' or 'onnxruntime'")
    name = canonical_backend(backend) if backend is not None else None
    check_int(runs, "runs", minimum=1)
    check_int(warmup, "warmup", minimum=0)
    check_int(batch_size, "batch_size", minimum=1)
    _check_model_argument(model)
    file = str(model) if isinstance(model, (str, Path)) and Path(model).exists() else None
    onnx_file = file is not None and Path(file).suffix.lower() == ".onnx"
    if name is None:
        name = "onnxruntime" if onnx_file else "eager"
    elif onnx_file and name != "onnxruntime":
        raise invalid("backend", backend, f"'onnxruntime' (or none) for the ONNX file {Path(file).name}")
    module, examples, input_names, label = _resolve(model, inputs, arch, trust_pickle)
    import numpy as np

    from .._core.tensors import to_numpy

    if examples is None:
        raise invalid("inputs", None, f"example inputs for {label}: its input shapes are not fixed in the file")
    batch = tuple(rebatch(to_numpy(e), batch_size) for e in examples)
    if name == "onnxruntime":
        if isinstance(module, Path):
            onnx_path, work = module, None
            _check_inputs(module, "onnx", batch)
        else:
            predictor = load(module, "onnxruntime", example_inputs=examples, input_names=input_names)
            onnx_path, work = predictor.onnx_path, predictor
        ops, layers, total = _profile_ort(onnx_path, batch, runs, warmup)
        del work
    else:
        import torch

        from .benchmark import trial_forward

        tensors = tuple(torch.from_numpy(np.ascontiguousarray(b)) for b in batch)
        if isinstance(module, torch.nn.Module):
            trial_forward(module, tensors)
        ops, layers, total = _profile_torch(module, tensors, runs, warmup, compiled=name == "compile")
    return ProfileResult(label, name, batch_size, runs, total, ops, layers, file=file)


def _resolve(model: Any, inputs: Any, arch: str | None, trust_pickle: bool) -> tuple[Any, tuple[Any, ...] | None, list[str] | None, str]:
    from .. import models
    from .._core.tensors import as_input_tuple
    from ..models import resolve_model

    if isinstance(model, str) and not Path(model).exists():
        spec = models.get(model)
        module = models.Logits(spec.model).eval() if spec.task == "causal-lm" else spec.model
        return module, as_input_tuple(inputs) if inputs is not None else spec.example_inputs(1), list(spec.input_names), spec.name
    if isinstance(model, (str, Path)):
        module, examples, names, label = resolve_model(str(model), None, arch=arch, trust_pickle=trust_pickle)
        if inputs is not None:
            examples = as_input_tuple(inputs)
        if examples is None and isinstance(module, Path):
            from .benchmark import _inputs_from_file

            examples = _inputs_from_file(module, "onnx")
        return module, examples, names, label
    return model.eval(), as_input_tuple(inputs) if inputs is not None else None, None, type(model).__name__


def _profile_torch(module: Any, tensors: tuple[Any, ...], runs: int, warmup: int, compiled: bool) -> tuple[list[OpTime], list[LayerTime], float]:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    leaves = {n: m for n, m in module.named_modules() if n and not list(m.children())} \
        if hasattr(module, "named_modules") else {}  # an AOTInductor package: operators only
    handles = []
    ranges: dict[int, Any] = {}

    def pre(name: str) -> Any:
        def hook(mod: Any, args: Any) -> None:
            ranges[id(mod)] = record_function(f"layer::{name}")
            ranges[id(mod)].__enter__()
        return hook

    def post(mod: Any, args: Any, out: Any) -> None:
        r = ranges.pop(id(mod), None)
        if r is not None:
            r.__exit__(None, None, None)

    run_module = torch.compile(module, options={"freezing": True}) if compiled else module
    if not compiled:  # Inductor fuses across layers: per-layer ranges only make sense eagerly
        for name, m in leaves.items():
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    try:
        with torch.inference_mode():
            for _ in range(max(1, warmup)):
                run_module(*tensors)
            with profile(activities=activities) as prof:
                for _ in range(runs):
                    run_module(*tensors)
    finally:
        for h in handles:
            h.remove()
    events = prof.key_averages()
    op_self = {e.key: (e.count, e.self_cpu_time_total) for e in events if not e.key.startswith("layer::")}
    total_us = sum(t for _, t in op_self.values()) or 1.0
    ops = sorted((OpTime(k, c, t / 1000 / runs, 100 * t / total_us) for k, (c, t) in op_self.items() if t > 0),
                 key=lambda o: -o.ms_per_run)
    layer_us = {e.key[len("layer::"):]: e.cpu_time_total for e in events if e.key.startswith("layer::")}
    layer_total = sum(layer_us.values()) or 1.0
    layers = sorted(
        (LayerTime(n, type(leaves[n]).__name__, t / 1000 / runs, 100 * t / layer_total,
                   sum(p.numel() for p in leaves[n].parameters())) for n, t in layer_us.items() if n in leaves),
        key=lambda ly: -ly.ms_per_run)
    return ops, layers, total_us / 1000 / runs


def _profile_ort(path: Path, batch: tuple[Any, ...], runs: int, warmup: int) -> tuple[list[OpTime], list[LayerTime], float]:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="deepseek-prof-") as tmp:
        from ..runtime.backends import session_options

        opts = session_options()
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {i.name: b for i, b in zip(session.get_inputs(), batch)}
        for _ in range(max(1, warmup) + runs):  # the warm-up runs are cut from the trace below
            session.run(None, feed)
        trace = _read_trace(session.end_profiling())
    # the trace holds warm-up runs too: keep the last `runs` model_run events' window
    model_runs = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"])
    window_start = model_runs[-runs]["ts"] if len(model_runs) >= runs else 0
    per_op: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    per_node: dict[str, list[Any]] = {}
    for e in trace:
        if e.get("cat") != "Node" or e.get("ts", 0) < window_start or not e.get("name", "").endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        op = args.get("op_name", "?")
        node = e["name"][: -len("_kernel_time")]
        per_op[op][0] += 1
        per_op[op][1] += e.get("dur", 0)
        per_node.setdefault(node, [op, 0.0])[1] += e.get("dur", 0)
    total_us = sum(t for _, t in per_op.values()) or 1.0
    ops = sorted((OpTime(k, int(c), t / 1000 / runs, 100 * t / total_us) for k, (c, t) in per_op.items()), key=lambda o: -o.ms_per_run)
    from ..runtime.onnx_export import onnx_module_scopes

    scopes = onnx_module_scopes(path)
    layers = sorted((LayerTime(_layer_name(n, scopes), op, t / 1000 / runs, 100 * t / total_us) for n, (op, t) in per_node.items()),
                    key=lambda ly: -ly.ms_per_run)
    return ops, layers, total_us / 1000 / runs


def _layer_name(ort_node: str, scopes: dict[str, str]) -> str:
    """ORT renames nodes it fuses or re-lays out (``relu_44_nchwc``); recover the module where possible."""
    import re

    base = re.sub(r"(_nchwc|_token_\d+|_output_\d+|_fused.*)$", "", ort_node)
    for key in (ort_node, base, f"node_{base}"):
        if key in scopes:
            return f"{scopes[key]} ({ort_node})"
    return ort_node


def _read_trace(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return data if isinstance(data, list) else data.get("traceEvents", [])
