"""Export a PyTorch model to ONNX with the dynamo exporter and prove ONNX Runtime reproduces it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._core.atomic import atomic_path
from .._core.checks import check_int, check_number
from .._core.errors import DeepSeekError, VerificationError, invalid
from .._core.tensors import as_input_tuple, eval_mode, flatten_outputs, to_numpy, to_torch


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What was written and how closely ONNX Runtime matches PyTorch on the example inputs."""

    path: Path
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_batch: bool
    opset: int
    size_bytes: int
    export_seconds: float
    max_abs_diff: float | None  # None when verification was skipped
    tolerance: float | None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


def export_onnx(
    model: torch.nn.Module,
    example_inputs: Any,
    path: str | Path,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int = 18,
    verify: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> ExportResult:
    """Export ``model`` to ONNX at ``path`` (atomically) and check ORT's outputs against PyTorch's.

    With ``dynamic_batch`` the first dimension of every input is symbolic. Verification runs ONNX Runtime
    on ``example_inputs`` and fails with :class:`VerificationError` when the largest absolute difference
    exceeds ``atol + rtol * max|reference|``.
    """
    from .._core.atomic import check_output

    program = None
    if isinstance(model, torch.export.ExportedProgram):
        # an exported program keeps the shapes it was exported with (dynamic ones stay dynamic)
        program, model, dynamic_batch = model, model.module(), False
    elif not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module or torch.export.ExportedProgram")
    args = as_input_tuple(example_inputs, "example_inputs")
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise invalid("path", path, "a file name ending in .onnx")
    path = Path(path)
    if path.suffix != ".onnx":
        raise invalid("path", str(path), "a file name ending in .onnx")
    check_output(path, argument="path")
    check_opset(opset)
    for name, value in (("atol", atol), ("rtol", rtol)):
        check_number(value, name, minimum=0)
    if isinstance(input_names, str) or isinstance(output_names, str):
        raise invalid("input_names" if isinstance(input_names, str) else "output_names",
                      input_names if isinstance(input_names, str) else output_names, "a list of names, not one string")
    names = tuple(input_names) if input_names else tuple(f"input_{i}" if len(args) > 1 else "input" for i in range(len(args)))
    if len(names) != len(args):
        raise invalid("input_names", list(names), f"{len(args)} names, one per example input")
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise invalid("input_names", list(names), "distinct non-empty strings")

    if program is None:
        model = eval_mode(model)
    from .._core.export import run_examples

    n_outputs = len(flatten_outputs(run_examples(model, args, argument="example_inputs")))
    if not output_names:
        output_names = ["output"] if n_outputs == 1 else [f"output_{i}" for i in range(n_outputs)]
    # torch.export specializes a dimension of size 1 (a batch-1 example bakes batch 1 into reshapes such as
    # nn.MultiheadAttention's): trace a dynamic batch with two rows
    trace_args = _grown(args) if dynamic_batch and all(_is_batched(a) for a in args) and \
        all(a.shape[0] == 1 for a in args) else args
    started = time.perf_counter()
    with _out_of_place_activations(model if program is None else None):
        try:
            onnx_program = _torch_onnx_export(program or model, trace_args, names, output_names, opset, dynamic_batch)
        except Exception as exc:  # the exporter raises many types; the user needs the op that failed
            if not dynamic_batch:
                raise DeepSeekError(f"model failed to export to ONNX: {_first_line(exc)}") from exc
            # dimension 0 may not be a batch dimension (or the model fixes it): a static export says which
            try:
                onnx_program = _torch_onnx_export(program or model, args, names, output_names, opset, False)
            except Exception as exc2:
                raise DeepSeekError(f"model failed to export to ONNX: {_first_line(exc2)}") from exc2
            dynamic_batch = False
            warnings.warn(f"export with a dynamic batch dimension failed ({_first_line(exc)}); exported a static "
                          "batch", stacklevel=2)
    seconds = time.perf_counter() - started

    with atomic_path(path) as tmp:
        onnx_program.save(str(tmp), external_data=False)
        onnx_outputs = tuple(o.name for o in _session(tmp).get_outputs())
        diff = tol = None
        if verify:
            diff, tol = verify_onnx(tmp, model, args, atol=atol, rtol=rtol)
            if dynamic_batch and all(_is_batched(a) for a in args):
                # a second batch size proves the batch dimension really is dynamic
                diff2, tol2 = verify_onnx(tmp, model, _grown(args), atol=atol, rtol=rtol)
                diff, tol = max(diff, diff2), max(tol, tol2)
        size = tmp.stat().st_size
        written = _written_opset(tmp)
    if written is not None and written != opset:
        warnings.warn(f"the ONNX exporter wrote opset {written}, not the requested {opset} (it could not convert "
                      f"the graph to opset {opset})", stacklevel=2)
    return ExportResult(path, names, onnx_outputs, dynamic_batch, written or opset, size, seconds, diff, tol)


@contextlib.contextmanager
def _out_of_place_activations(model: torch.nn.Module | None) -> Any:
    """Within the block, ``model``'s in-place activations (``ReLU(inplace=True)`` and the like) compute out of
    place; their flags are restored afterwards.

    The graph is the same either way (export functionalizes in-place ops), but torch.export decomposes every
    in-place call on its own: torchvision's MobileNetV2 (35 in-place ReLU6) exports in ~7 s instead of ~10 s."""
    flipped = [m for m in (model.modules() if model is not None else ()) if getattr(m, "inplace", None) is True]
    for m in flipped:
        m.inplace = False
    try:
        yield
    finally:
        for m in flipped:
            m.inplace = True


def opset_range() -> tuple[int, int]:
    """(lowest, highest) ONNX opset the installed exporter (torch.onnx) and onnx package support."""
    import onnx
    from torch.onnx import _constants

    return int(_constants.ONNX_MIN_OPSET), int(min(_constants.ONNX_MAX_OPSET, onnx.defs.onnx_opset_version()))


def check_opset(opset: Any, *, argument: str = "opset") -> int:
    """``opset`` if the installed exporter supports it, else an error naming ``argument`` and the range."""
    low, high = opset_range()
    return check_int(opset, argument, minimum=low, maximum=high,
                     expected=f"an ONNX opset from {low} to {high} (what the installed torch.onnx exporter "
                              f"supports; {high} is the newest)")


def _written_opset(path: Path) -> int | None:
    """The default-domain opset recorded in the ONNX file ``path``."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _torch_onnx_export(model: Any, args: tuple[Any, ...], names: Sequence[str], output_names: Sequence[str],
                       opset: int, dynamic_batch: bool) -> Any:
    dynamic_shapes = tuple({0: torch.export.Dim.DYNAMIC} for _ in args) if dynamic_batch else None
    captured = io.StringIO()  # the exporter prints progress and optimizer chatter; keep stdout clean
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), torch.no_grad():
        return torch.onnx.export(
            model, args, dynamo=True, dynamic_shapes=dynamic_shapes, input_names=list(names),
            output_names=list(output_names), opset_version=opset, verbose=False,
        )


def verify_onnx(
    onnx_path: str | Path,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    *,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> tuple[float, float]:
    """Run ONNX Runtime and PyTorch on ``args``; return (max abs diff, tolerance) or raise if over it."""
    with torch.no_grad():
        reference = [to_numpy(t) for t in flatten_outputs(model(*args))]
    session = _session(onnx_path)
    got = session.run(None, {i.name: to_numpy(a) for i, a in zip(session.get_inputs(), args)})
    if len(got) != len(reference):
        raise VerificationError(f"ONNX model has {len(got)} outputs, PyTorch model has {len(reference)}")
    diff = scale = 0.0
    for ref, out in zip(reference, got):
        if ref.shape != out.shape:
            raise VerificationError(f"ONNX output shape {out.shape} != PyTorch output shape {ref.shape}")
        if ref.size:
            diff = max(diff, float(np.max(np.abs(ref.astype(np.float64) - out.astype(np.float64)))))
            scale = max(scale, float(np.max(np.abs(ref.astype(np.float64)))))
    tol = atol + rtol * scale
    if not diff <= tol:
        raise VerificationError(f"ONNX Runtime output differs from PyTorch by {diff:.3g} (tolerance {tol:.3g})")
    return diff, tol


def _session(path: str | Path) -> Any:
    import onnxruntime as ort

    from .backends import session_options

    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])


def _first_line(exc: BaseException) -> str:
    """The part of an exporter error a user can act on: the failing operator and the summary line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip() or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "## Exception summary" in lines:  # torch.onnx puts the real cause under this heading
        lines = lines[lines.index("## Exception summary") + 1 :] or lines
    summary = lines[0]
    op = re.search(r"aten\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?", text)
    return f"operator {op.group(0)} — {summary}" if op else f"{type(exc).__name__}: {summary}"


def _grown(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with their first row repeated once more: a second batch size."""
    return tuple(torch.cat([to_torch(a), to_torch(a)[:1]]) for a in args)


def _is_batched(x: Any) -> bool:
    return len(getattr(x, "shape", ())) > 0


def onnx_module_scopes(path: str | Path) -> dict[str, str]:
    """ONNX node and output names → the PyTorch module they came from (recorded by the dynamo exporter)."""
    import ast

    import onnx

    scopes: dict[str, str] = {}
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return scopes
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            names = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            continue
        if len(names) >= 2 and names[-2]:
            for key in (node.name, *node.output):
                scopes[key] = names[-2]
    return scopes
