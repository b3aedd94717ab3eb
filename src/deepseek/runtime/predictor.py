"""``deepseek.runtime.load``: one Predictor API over PyTorch eager, torch.compile and ONNX Runtime."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core.checks import check_int
from .._core.errors import InvalidArgumentError, invalid
from .._core.tensors import as_input_tuple, eval_mode
from .artifacts import KINDS, detect_kind, load_exported_program, load_module
from .backends import InputSpec, OrtBackend, TorchBackend, canonical_backend, default_threads


class Predictor:
    """A loaded model on one backend. ``run(inputs)`` returns a list of numpy arrays."""

    def __init__(self, backend: Any, *, source: str, kind: str, workdir: Path | None = None) -> None:
        self._backend = backend
        self.source = source
        self.kind = kind
        if workdir is not None:  # a temporary export folder lives exactly as long as the predictor
            self._cleanup = weakref.finalize(self, shutil.rmtree, workdir, True)

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def device(self) -> str:
        return self._backend.device

    @property
    def input_specs(self) -> list[InputSpec] | None:
        return self._backend.input_specs

    @property
    def input_names(self) -> list[str] | None:
        return None if self.input_specs is None else [s.name for s in self.input_specs]

    @property
    def artifact_bytes(self) -> int:
        """Size of what this predictor runs: the ONNX file, or the module's weights."""
        return self._backend.artifact_bytes

    @property
    def onnx_path(self) -> Path | None:
        return getattr(self._backend, "path", None)

    def run(self, inputs: Any) -> list[np.ndarray]:
        """Run on a tensor/array, a sequence of them, or a dict keyed by input name."""
        args = self._arrange(inputs)
        try:
            return self._backend.run(args)
        except InvalidArgumentError:
            raise
        except (RuntimeError, ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidArgumentError(f"inputs: the model rejected them: {first}") from exc

    def __call__(self, *inputs: Any) -> np.ndarray | list[np.ndarray]:
        out = self.run(inputs[0] if len(inputs) == 1 else inputs)
        return out[0] if len(out) == 1 else out

    def _arrange(self, inputs: Any) -> tuple[Any, ...]:
        specs = self.input_specs
        if isinstance(inputs, Mapping):
            if specs is None:
                args = as_input_tuple(inputs)
            else:
                missing = [s.name for s in specs if s.name not in inputs]
                extra = sorted(set(inputs) - {s.name for s in specs})
                if missing or extra:
                    raise invalid("inputs", sorted(inputs), f"keys {[s.name for s in specs]}")
                args = tuple(inputs[s.name] for s in specs)
        else:
            args = as_input_tuple(inputs)
        if specs is not None:
            if len(args) != len(specs):
                raise invalid("inputs", f"{len(args)} input(s)", f"{len(specs)}: {[s.name for s in specs]}")
            for i, (spec, value) in enumerate(zip(specs, args)):
                spec.check(i, value)
        return args

    def __repr__(self) -> str:
        return f"Predictor(source={self.source!r}, kind={self.kind!r}, backend={self.backend!r}, device={self.device!r})"


INPUTS_ENTRY = "deepseek/inputs.json"  # inside an AOTInductor package's root folder


def load(
    model: Any,
    backend: str | None = None,
    *,
    device: str = "cpu",
    example_inputs: Any = None,
    input_names: Sequence[str] | None = None,
    arch: str | None = None,
    trust_pickle: bool = False,
    threads: int | None = None,
) -> Predictor:
    """Load a model file or an ``nn.Module`` for inference on ``backend``.

    Files: ``.onnx`` (ONNX Runtime), ``.pt2`` (torch.export), TorchScript ``.pt``, a state_dict or
    ``.safetensors`` with ``arch="torchvision:NAME"``; a pickled whole model only with ``trust_pickle``;
    an arm64 bundle's ``.so`` (natively on arm64, under qemu elsewhere — for checking, not speed); an
    AOTInductor ``.pt2`` package from ``deepseek-compile --backend inductor``.
    ``backend`` is ``eager``, ``compile``, ``onnxruntime`` or ``openvino`` (default: ``onnxruntime`` for ONNX
    files, ``openvino`` for OpenVINO IR ``.xml`` files, ``eager`` otherwise; ``openvino`` needs the ``openvino``
    extra and runs ONNX files, IR files and PyTorch models through an ONNX export). PyTorch models run on ONNX Runtime after an export that needs ``example_inputs``
    (a ``.pt2`` carries its own). ``device`` is ``cpu``, ``cuda`` or ``tensorrt`` (ONNX Runtime only).
    """
    check_int(threads, "threads", minimum=1, optional=True, expected="None or an integer >= 1")
    if backend is not None and not isinstance(backend, str):
        raise invalid("backend", backend, "None or a backend name such as 'onnxruntime'")
    if not isinstance(device, str):
        raise invalid("device", device, "'cpu', 'cuda' or 'tensorrt'")
    if isinstance(input_names, str):
        raise invalid("input_names", input_names, "a list of names, not one string")
    threads = threads or default_threads()
    if isinstance(model, (str, Path)):
        path = Path(model)
        kind = detect_kind(path)
        source = str(path)
    else:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a model file path or a torch.nn.Module")
        path, kind, source = None, "module", type(model).__name__
    if kind == "arm64_bundle":
        if backend not in (None, "executorch"):
            raise invalid("backend", backend, "'executorch' (or none) for an arm64 bundle")
        from .arm64_bundle import Arm64Backend

        return Predictor(Arm64Backend(path), source=source, kind=kind)
    if kind == "aoti_package":
        if backend not in (None, "eager", "inductor"):  # it runs in torch, as compiled: "eager" means "as is"
            raise invalid("backend", backend, "'inductor' (or none) for an AOTInductor package")
        runner = TorchBackend(load_module(path, kind), compiled=False, device=device, specs=_specs_from_package(path))
        runner.name, runner.artifact_bytes = "inductor", path.stat().st_size
        return Predictor(runner, source=source, kind=kind)
    name = canonical_backend(backend or {"onnx": "onnxruntime", "openvino_ir": "openvino"}.get(kind, "eager"))

    if kind == "openvino_ir" and name != "openvino":
        raise invalid("backend", backend, "'openvino' (or none) for an OpenVINO IR file")
    if kind == "onnx" and name not in ("onnxruntime", "openvino"):
        raise invalid("backend", backend, "'onnxruntime' or 'openvino' for an ONNX file")
    if kind in ("onnx", "openvino_ir"):
        return Predictor(_file_backend(name, path, device, threads), source=source, kind=kind)

    module = model if path is None else load_module(path, kind, arch=arch, trust_pickle=trust_pickle)
    eval_mode(module)
    examples = _examples(module, kind, path, example_inputs)
    if name in ("onnxruntime", "openvino"):
        if examples is None:
            raise invalid("example_inputs", None, f"example inputs to export this {KINDS.get(kind, 'model')} to ONNX")
        import torch

        from .onnx_export import export_onnx

        workdir = Path(tempfile.mkdtemp(prefix="deepseek-ort-"))
        try:
            source_model = load_exported_program(path) if kind == "exported_program" else module
            result = export_onnx(source_model, examples, workdir / "model.onnx", input_names=input_names)
            backend_obj = _file_backend(name, result.path, device, threads)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return Predictor(backend_obj, source=source, kind=kind, workdir=workdir)

    if threads:
        import torch

        torch.set_num_threads(threads)
    specs = program_input_specs(load_exported_program(path)) if kind == "exported_program" else \
        _specs_from_examples(examples, input_names)
    return Predictor(TorchBackend(module, compiled=name == "compile", device=device, specs=specs), source=source, kind=kind)


def _file_backend(name: str, path: Path, device: str, threads: int | None) -> Any:
    """The backend ``name`` (``onnxruntime`` or ``openvino``) running the model file ``path``."""
    if name == "openvino":
        from .openvino_backend import OpenVinoBackend

        return OpenVinoBackend(path, device=device, threads=threads)
    return OrtBackend(path, device=device, threads=threads)


def _examples(module: Any, kind: str, path: Path | None, example_inputs: Any) -> tuple[Any, ...] | None:
    if example_inputs is not None:
        return as_input_tuple(example_inputs, "example_inputs")
    if kind == "exported_program" and path is not None:
        args = getattr(load_exported_program(path), "example_inputs", None)
        if args and args[0]:
            return tuple(args[0])
    return None


def _specs_from_examples(examples: tuple[Any, ...] | None, names: Sequence[str] | None) -> list[InputSpec] | None:
    if examples is None:
        return None
    from .._core.tensors import to_numpy

    names = list(names) if names else [f"input_{i}" if len(examples) > 1 else "input" for i in range(len(examples))]
    if len(names) != len(examples):
        raise invalid("input_names", names, f"{len(examples)} names")
    return [InputSpec(n, (None, *ex.shape[1:]) if len(ex.shape) else (), str(to_numpy(ex).dtype))
            for n, ex in zip(names, examples)]


def _specs_from_package(path: Path) -> list[InputSpec] | None:
    """Input specs deepseek-compile stored in an AOTInductor package (its compiled code does not check shapes)."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as zf:
        entry = next((n for n in zf.namelist() if n.endswith("/" + INPUTS_ENTRY)), None)
        if entry is None:
            return None
        return [InputSpec(d["name"], tuple(d["shape"]), d["dtype"]) for d in json.loads(zf.read(entry))]


def program_input_specs(program: Any) -> list[InputSpec]:
    """Input specs of a torch.export program: its symbolic dimensions are dynamic, the rest fixed."""
    user_inputs = set(program.graph_signature.user_inputs)
    vals = [(node.name, node.meta.get("val")) for node in program.graph.nodes
            if node.op == "placeholder" and node.name in user_inputs]
    return [InputSpec(name, tuple(d if isinstance(d, int) else None for d in val.shape),
                      str(val.dtype).removeprefix("torch.")) for name, val in vals]
