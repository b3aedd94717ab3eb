"""Handlers: how one model version turns requests into outputs, in LitServe's shape.

``setup`` loads the model once; ``decode_request`` turns one request's inputs into what the model takes;
``batch`` stacks several decoded requests, ``predict`` runs them in one call, ``unbatch`` splits the result
back; ``encode_response`` turns one request's share into its outputs. :class:`TensorHandler` serves any
artifact ``deepseek.load`` runs; subclass :class:`Handler` for models whose input is not a tensor (text in,
text out) and name it in ``config.yaml`` (``handler: handler.py:MyHandler``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._core.errors import ArtifactError, InvalidArgumentError, invalid
from .config import DATATYPES, NUMPY_TO_DATATYPE, ModelConfig, TensorConfig

ARTIFACT_SUFFIXES = (".onnx", ".pt2", ".so")


class Handler:
    """Override what your model needs; the defaults pass values through and batch lists."""

    config: ModelConfig

    def setup(self, version_dir: Path, config: ModelConfig) -> None:
        """Load the model from ``version_dir`` (called once, before the version is served)."""

    def decode_request(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]) -> Any:
        """One request's decoded v2 inputs (name → numpy array; BYTES as object arrays of bytes). Raise
        ``ValueError`` (or :class:`~deepseek.InvalidArgumentError`) for a request the model cannot take: the
        client gets a 400 with your message (any other exception is a 500)."""
        return inputs

    def batch(self, items: list[Any]) -> Any:
        return items

    def predict(self, batch: Any) -> Any:
        raise NotImplementedError

    def unbatch(self, output: Any, sizes: list[int]) -> list[Any]:
        return list(output)

    def encode_response(self, output: Any) -> dict[str, np.ndarray]:
        """One request's outputs as name → numpy array."""
        return output

    def batch_size_of(self, item: Any) -> int:
        """How many rows a decoded request holds (what ``max_batch_size`` counts)."""
        return 1

    def sample_request(self) -> dict[str, np.ndarray] | None:
        """A request to warm up and check a freshly loaded version with (None: skip the check)."""
        return None

    def metadata(self) -> dict[str, list[dict[str, Any]]]:
        """v2 model metadata: ``{"inputs": [...], "outputs": [...]}`` tensor specs."""
        return {"inputs": [_spec(t) for t in self.config.inputs], "outputs": [_spec(t) for t in self.config.outputs]}

    def close(self) -> None:
        """Release what ``setup`` acquired."""


class TensorHandler(Handler):
    """Any artifact ``deepseek.load`` runs (ONNX on ONNX Runtime without importing torch; .pt2; arm64 bundles)."""

    def setup(self, version_dir: Path, config: ModelConfig) -> None:
        from ..runtime import load

        self.config = config
        self.path = find_artifact(version_dir)
        self.predictor = load(self.path, threads=config.threads)
        specs = self.predictor.input_specs or []
        self.inputs = config.inputs or tuple(
            TensorConfig(s.name, _datatype(s.dtype), tuple(-1 if d is None else d for d in s.shape[1:])) for s in specs)
        if not self.inputs:
            raise ArtifactError(f"model: {self.path} does not declare its inputs; list them under inputs: in config.yaml")
        self.output_names = [t.name for t in config.outputs] or _output_names(self.predictor)

    def decode_request(self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]) -> dict[str, np.ndarray]:
        expected = [t.name for t in self.inputs]
        if sorted(inputs) != sorted(expected):
            raise invalid("inputs", sorted(inputs), f"exactly the tensors {expected}")
        rows = None
        for spec in self.inputs:
            value = inputs[spec.name]
            if not isinstance(value, np.ndarray):
                raise invalid(f"inputs[{spec.name}]", type(value).__name__, "a numpy array")
            if value.dtype.name != DATATYPES[spec.datatype]:
                raise invalid(f"inputs[{spec.name}].datatype", _datatype(value.dtype.name), spec.datatype)
            if value.ndim != len(spec.shape) + 1 or any(e != -1 and e != g for e, g in zip(spec.shape, value.shape[1:])):
                raise invalid(f"inputs[{spec.name}].shape", list(value.shape), f"[N, {', '.join(map(str, spec.shape))}]"
                              .replace("-1", "*"))
            if rows is not None and value.shape[0] != rows:
                raise invalid(f"inputs[{spec.name}].shape", list(value.shape), f"the same batch size ({rows}) as the others")
            rows = value.shape[0]
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise invalid(f"inputs[{spec.name}]", "NaN or infinite values", "finite numbers")
        return inputs

    def batch_size_of(self, item: dict[str, np.ndarray]) -> int:
        return int(next(iter(item.values())).shape[0])

    def batch(self, items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if len(items) == 1:
            return items[0]
        return {t.name: np.concatenate([item[t.name] for item in items]) for t in self.inputs}

    def predict(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.predictor.run(batch)

    def unbatch(self, output: list[np.ndarray], sizes: list[int]) -> list[list[np.ndarray]]:
        if len(sizes) == 1:
            return [output]
        cuts = np.cumsum(sizes)[:-1]
        parts = [np.split(o, cuts) for o in output]
        return [list(p) for p in zip(*parts)]

    def encode_response(self, output: list[np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, output))

    def sample_request(self) -> dict[str, np.ndarray]:
        from .loadgen import sample_inputs

        return sample_inputs({"inputs": [_spec(t) for t in self.inputs]})

    def metadata(self) -> dict[str, list[dict[str, Any]]]:
        return {"inputs": [_spec(t) for t in self.inputs],
                "outputs": [{"name": n, "datatype": "FP32", "shape": [-1]} for n in self.output_names]}

    def close(self) -> None:
        self.predictor = None


def find_artifact(version_dir: Path) -> Path:
    """The model file in a version folder: ``model.*`` first, else the only artifact there."""
    found = sorted(p for p in version_dir.iterdir() if p.suffix in ARTIFACT_SUFFIXES and p.is_file())
    named = [p for p in found if p.stem == "model"]
    if named:
        return named[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ArtifactError(f"model: {version_dir} holds no model file ({', '.join(ARTIFACT_SUFFIXES)}) and its "
                            "config names no handler")
    raise ArtifactError(f"model: {version_dir} holds several model files {[p.name for p in found]}; name one model.*")


def load_handler(spec: str | None, model_dir: Path) -> Handler:
    """The handler ``config.yaml`` names (``file.py:Class`` inside the model folder, or ``module:Class``)."""
    if spec is None:
        return TensorHandler()
    where, _, name = spec.partition(":")
    if where.endswith(".py"):
        path = (model_dir / where).resolve()
        if not path.is_file():
            raise ArtifactError(f"handler: {path} not found (config.yaml names {spec!r})")
        module_name = f"deepseek_handler_{abs(hash(str(path)))}"
        loader = importlib.util.spec_from_file_location(module_name, path)
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as exc:
            raise ArtifactError(f"handler: {path} failed to import: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ArtifactError(f"handler: module {where!r} not importable ({exc})") from exc
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Handler)):
        raise ArtifactError(f"handler: {spec!r} is not a deepseek.serve.Handler subclass")
    return cls()


def _spec(t: TensorConfig) -> dict[str, Any]:
    return {"name": t.name, "datatype": t.datatype, "shape": [-1, *t.shape]}


def _datatype(numpy_dtype: str) -> str:
    if numpy_dtype not in NUMPY_TO_DATATYPE:
        raise InvalidArgumentError(f"datatype: numpy {numpy_dtype} has no v2 datatype")
    return NUMPY_TO_DATATYPE[numpy_dtype]


def _output_names(predictor: Any) -> list[str]:
    session = getattr(getattr(predictor, "_backend", None), "session", None)  # ONNX Runtime names its outputs
    return [o.name for o in session.get_outputs()] if session is not None else ["output"]
