"""``deepseek profile``: where a model's time goes, per operator and per layer.

PyTorch backends use ``torch.profiler`` (operators from ``key_averages``; layers from ``record_function``
ranges opened by module hooks). ONNX Runtime uses its own profiler (per node kernel time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from .._errors import invalid


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save_json(self, path: str | Path) -> Path:
        from .._atomic import write_text

        return write_text(path, self.to_json() + "\n")

    def summary(self) -> str:
        ops = ", ".join(f"{o.name} {o.share:.0f}%" for o in self.operators[:3])
        layers = ", ".join(f"{ly.name} ({ly.type}) {ly.share:.0f}%" for ly in self.layers[:3])
        return (f"{self.model} on {self.backend}, batch {self.batch_size}: {self.total_ms_per_run:.2f} ms per run "
                f"of operator time. Top operators: {ops}. Top layers: {layers}.")

    def table(self, kind: str = "operators", top: int = 15) -> Any:
        from .._table import Table

        if kind not in ("operators", "layers"):
            raise invalid("kind", kind, "'operators' or 'layers'")
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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .._atomic import atomic_path

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


def profile(model: Any, inputs: Any = None, *, backend: str = "eager", batch_size: int = 1, runs: int = 10,
            warmup: int = 3, arch: str | None = None, trust_pickle: bool = False) -> ProfileResult:
    """Profile ``model`` (module, file or built-in name) on ``backend`` and attribute the time."""
    from ..runtime import canonical_backend, load
    from .benchmark import rebatch

    name = canonical_backend(backend)
    if runs < 1 or warmup < 0:
        raise invalid("runs/warmup", (runs, warmup), "runs >= 1 and warmup >= 0")
    if batch_size < 1:
        raise invalid("batch_size", batch_size, "a positive integer")
    module, examples, input_names, label = _resolve(model, inputs, arch, trust_pickle)
    import numpy as np

    from .._tensors import to_numpy

    if examples is None:
        raise invalid("inputs", None, f"example inputs for {label} (e.g. --inputs 1x3x224x224)")
    batch = tuple(rebatch(to_numpy(e), batch_size) for e in examples)
    if name == "onnxruntime":
        if isinstance(module, Path):
            onnx_path, work = module, None
        else:
            predictor = load(module, "onnxruntime", example_inputs=examples, input_names=input_names)
            onnx_path, work = predictor.onnx_path, predictor
        ops, layers, total = _profile_ort(onnx_path, batch, runs, warmup)
        del work
    else:
        if isinstance(module, Path):
            raise invalid("backend", backend, "'onnxruntime' for an ONNX file")
        import torch

        tensors = tuple(torch.from_numpy(np.ascontiguousarray(b)) for b in batch)
        ops, layers, total = _profile_torch(module, tensors, runs, warmup, compiled=name == "compile")
    return ProfileResult(label, name, batch_size, runs, total, ops, layers)


def _resolve(model: Any, inputs: Any, arch: str | None, trust_pickle: bool) -> tuple[Any, tuple[Any, ...] | None, list[str] | None, str]:
    from .. import models
    from .._cli_common import resolve_model
    from .._tensors import as_input_tuple

    if isinstance(model, str) and not Path(model).exists():
        spec = models.get(model)
        module = models.Logits(spec.model).eval() if spec.task == "causal-lm" else spec.model
        return module, as_input_tuple(inputs) if inputs is not None else spec.example_inputs(1), list(spec.input_names), spec.name
    if isinstance(model, (str, Path)):
        module, examples, names, label = resolve_model(str(model), None, arch=arch, trust_pickle=trust_pickle)
        if inputs is not None:
            examples = as_input_tuple(inputs)
        if examples is None and isinstance(module, Path):
            examples = _ort_inputs(module)
        return module, examples, names, label
    return model.eval(), as_input_tuple(inputs) if inputs is not None else None, None, type(model).__name__


def _ort_inputs(path: Path) -> tuple[Any, ...] | None:
    from .benchmark import _inputs_from_file

    return _inputs_from_file(path, "onnx")


def _profile_torch(module: Any, tensors: tuple[Any, ...], runs: int, warmup: int, compiled: bool) -> tuple[list[OpTime], list[LayerTime], float]:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    leaves = {n: m for n, m in module.named_modules() if n and not list(m.children())}
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
        for _ in range(max(1, warmup)):
            session.run(None, feed)
        for _ in range(runs):
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


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import add_model_arguments, count

    add_model_arguments(parser)
    parser.add_argument("--backend", default="eager", help="eager, compile or onnxruntime")
    parser.add_argument("--batch-size", "-b", type=count(), default=1)
    parser.add_argument("--runs", type=count(), default=10)
    parser.add_argument("--top", type=count(), default=15, help="rows shown per table")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the full profile as JSON")
    parser.add_argument("--png", metavar="FILE", default=None, help="write a chart of the top operators and layers")


def run_cli(args: argparse.Namespace) -> int:
    import numpy as np

    from .._cli_common import parse_shapes

    shapes = parse_shapes(args.inputs)
    inputs = tuple(np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in shapes) if shapes else None
    result = profile(args.model, inputs, backend=args.backend, batch_size=args.batch_size, runs=args.runs,
                     arch=args.arch, trust_pickle=args.trust_pickle)
    from .._cli_common import console as make_console

    console = make_console()
    console.print(result.table("operators", args.top))
    if result.layers:
        console.print(result.table("layers", args.top))
    console.print(result.summary())
    if args.json:
        result.save_json(args.json)
        console.print(f"wrote {args.json}")
    if args.png:
        result.plot(args.png, top=args.top)
        console.print(f"wrote {args.png}")
    return 0
