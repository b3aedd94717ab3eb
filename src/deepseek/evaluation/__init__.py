"""``deepseek evaluate``: accuracy on a bundled real data set plus latency — a gate for CI pipelines.

Labeled sets (``digits``, ``mnist-5k``, ``fashion-mnist``) report top-1 accuracy on held-out rows:
digits and MNIST-5k use ``Dataset.split(0.2, seed=0)``'s test part (train on the other part), Fashion-MNIST
its official 10k test split. ``photos`` has no labels: it reports top-1 agreement with a reference model
(default: the bundled FP32 MobileNetV2) on real photos — on all views, on confident ones (reference top-1
probability >= 0.5) and on clear ones (confident, and the top-1 leads the runner-up by >= 0.2) — and mean KL.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._core.agreement import fidelity
from .._core.arrays import run_batched
from .._core.checks import check_choice, check_int, check_number
from .._core.errors import DeepSeekError, InvalidArgumentError, invalid

LABELED = ("digits", "mnist-5k", "fashion-mnist")
DATASETS = (*LABELED, "photos")


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    model: str
    data: str
    metric: str  # "accuracy" | "top1_agreement"
    value: float
    samples: int
    backend: str
    latency_ms: float  # median of batch-1 calls
    throughput: float  # items/s over the whole evaluation pass
    extra: dict[str, Any]
    min_accuracy: float | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.min_accuracy is None else self.value >= self.min_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (never over the evaluated model file)."""
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path", inputs=(self.model,))
        return write_text(path, self.to_json() + "\n")


def load_eval_data(name: str, limit: int | None = None) -> tuple[Any, Any, list[str]]:
    """(inputs, labels or None, names) for a data set name; labeled sets return their held-out part."""
    from .. import assets

    check_choice(name, "data", DATASETS, expected=f"one of {list(DATASETS)}")
    check_int(limit, "limit", minimum=1, optional=True, expected="a positive integer")
    if name == "photos":
        x, names = assets.photo_batch(views=8)
        y = None
    else:
        ds = {"digits": lambda: assets.digits().split(0.2, seed=0)[1],
              "mnist-5k": lambda: assets.mnist_5k().split(0.2, seed=0)[1],
              "fashion-mnist": lambda: assets.fashion_mnist("test")}[name]()
        x, y, names = ds.x, ds.y, ds.classes
    if limit is not None:
        x = x[:limit]
        y = None if y is None else y[:limit]
    return x, y, names


def _infer_data(shape: tuple[int | None, ...] | None) -> str:
    dims = tuple(shape[1:]) if shape else ()
    return {(1, 8, 8): "digits", (1, 28, 28): "mnist-5k", (3, 224, 224): "photos"}.get(dims, "")


def evaluate(model: Any, *, data: str | None = None, reference: Any = None, backend: str | None = None,
             min_accuracy: float | None = None, batch_size: int = 64, limit: int | None = None,
             arch: str | None = None, trust_pickle: bool = False) -> EvaluationResult:
    """Accuracy (or agreement with ``reference`` on real photos) and latency of ``model``.

    ``reference``: a model (file, module or loaded predictor; default the bundled FP32 MobileNetV2), or its outputs
    on the photos already computed — an (N, classes) array or tensor, e.g. ``reference_outputs()`` — so several
    candidates are compared with one reference run."""
    from .._core.timing import measure
    from ..bench.benchmark import check_model_file
    from ..runtime import canonical_backend, load

    # every argument is checked before the model and the data are loaded
    check_number(min_accuracy, "min_accuracy", above=0, maximum=1, optional=True,
                 expected="a fraction in (0, 1], e.g. 0.9")
    check_int(batch_size, "batch_size", minimum=1)
    check_int(limit, "limit", minimum=1, optional=True, expected="an integer >= 1")
    check_choice(data, "data", (None, *DATASETS), expected=f"one of {list(DATASETS)}")
    if reference is not None and data is not None and data != "photos":
        raise invalid("reference", _label(reference), f"no reference with data={data!r} (a reference is for 'photos')")
    if backend is not None:
        if not isinstance(backend, str):
            raise invalid("backend", backend, "a backend name: 'eager', 'compile' or 'onnxruntime'")
        canonical_backend(backend)
    _check_source("model", model)
    outputs = _as_outputs(reference)
    if reference is not None and outputs is None:
        _check_source("reference", reference)
    if isinstance(model, (str, Path)):
        check_model_file(Path(model))
    predictor = load(model, backend, arch=arch, trust_pickle=trust_pickle)
    label = str(model) if isinstance(model, (str, Path)) else type(model).__name__
    specs = predictor.input_specs
    if data is None:
        data = _infer_data(specs[0].shape if specs else None)
        if not data:
            raise invalid("data", None, f"a data set name from {list(DATASETS)} (cannot infer it from the model's input)")
        if reference is not None and data != "photos":
            raise invalid("reference", _label(reference), f"no reference: the model's input says data={data!r}, and a "
                                                       "reference is for 'photos'")
    x, y, classes = load_eval_data(data, limit)
    if specs and specs[0].shape[1:] != tuple(x.shape[1:]) and all(d is not None for d in specs[0].shape[1:]):
        raise InvalidArgumentError(f"data: {data!r} gives inputs of shape (N, {', '.join(map(str, x.shape[1:]))}) "
                                   f"but the model expects (N, {', '.join(str(d) for d in specs[0].shape[1:])})")
    xs = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    fixed_batch = _fixed_batch(predictor)
    step = fixed_batch or batch_size

    # one batch first: data the model cannot take, or outputs that are not logits over the classes, fail now
    try:
        first = _predict(predictor, xs[:step], step)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"data: {data!r} gives inputs the model cannot take ({exc})") from exc
    if first.ndim != 2:
        raise invalid("model output", first.shape, "(N, classes) logits")
    if y is not None and first.shape[1] != len(classes):
        raise InvalidArgumentError(f"model: outputs {first.shape[1]} classes but {data!r} has {len(classes)}")

    import time

    t0 = time.perf_counter()
    logits = _predict(predictor, xs, step)
    seconds = time.perf_counter() - t0
    lat = measure(lambda: predictor.run(xs[: fixed_batch or 1]), warmup=3, runs=20)
    # logits holds the first batch's: its rank and class count were checked above (a batch differing could not
    # have been concatenated with it)
    if y is not None:
        pred = logits.argmax(1)
        labels = y.numpy()
        per_class = {c: float((pred[labels == i] == i).mean()) for i, c in enumerate(classes) if (labels == i).any()}
        metric, value, extra = "accuracy", float((pred == labels).mean()), {"per_class_accuracy": per_class}
    else:
        ref_logits = outputs if outputs is not None else _reference_logits(reference, xs, arch, trust_pickle,
                                                                           batch_size)
        if ref_logits.shape != logits.shape:
            raise InvalidArgumentError(f"reference: outputs {ref_logits.shape} but the model outputs {logits.shape}")
        extra = fidelity(ref_logits, logits)
        metric, value = "top1_agreement", extra.pop("agreement")
        extra["reference"] = "bundled FP32 MobileNetV2" if reference is None else \
            "given outputs" if outputs is not None else str(reference)
    return EvaluationResult(label, data, metric, value, int(xs.shape[0]), predictor.backend, lat.median_ms,
                            xs.shape[0] / seconds, extra, min_accuracy)


def reference_outputs(reference: Any = None, xs: Any = None, *, arch: str | None = None, trust_pickle: bool = False,
                      batch_size: int = 64) -> np.ndarray:
    """The outputs of ``reference`` (default: the bundled FP32 MobileNetV2) on ``xs`` (default: the photo views
    :func:`evaluate` measures agreement on), to pass to several :func:`evaluate` calls as ``reference``."""
    if reference is not None:
        _check_source("reference", reference)
    if xs is None:
        xs = load_eval_data("photos")[0].numpy()
    return _reference_logits(reference, xs, arch, trust_pickle, batch_size)


def _reference_logits(reference: Any, xs: np.ndarray, arch: str | None, trust_pickle: bool,
                      batch_size: int) -> np.ndarray:
    from ..runtime import load

    ref = reference if reference is not None else _default_reference()
    return predict(load(ref, arch=arch, trust_pickle=trust_pickle) if not hasattr(ref, "run") else ref, xs, batch_size)


def _label(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"an array of shape {list(shape)}" if shape is not None and not hasattr(value, "run") else str(value)


def _as_outputs(value: Any) -> np.ndarray | None:
    """``value`` as reference outputs when it is an array or tensor (else None: a model); checked to be 2-D."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        return None
    if value.ndim != 2 or value.dtype.kind != "f":
        raise invalid("reference", f"an array of shape {list(value.shape)} ({value.dtype})",
                      "a model, or its outputs on the data: a floating-point (N, classes) array")
    return value


def _check_source(argument: str, value: Any) -> None:
    """A model given as a path must be an existing file; otherwise an nn.Module (or a loaded predictor)."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.exists():
            raise invalid(argument, str(value), "an existing model file (.onnx, .pt2, .pt, state_dict with arch=)")
        if path.is_dir():
            raise invalid(argument, str(value), "a model file, not a folder")
        if argument == "reference":
            from ..bench.benchmark import check_model_file

            try:
                check_model_file(path)
            except DeepSeekError as exc:
                text = str(exc)
                raise type(exc)("reference" + text[len("model"):] if text.startswith("model") else text) from exc
    elif not (hasattr(value, "parameters") or hasattr(value, "run")):
        raise invalid(argument, type(value).__name__, "a model file path or a torch.nn.Module")


def predict(predictor: Any, xs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The first output of ``predictor`` over ``xs`` in batches (a fixed-batch model gets padded batches)."""
    return _predict(predictor, xs, _fixed_batch(predictor) or batch_size)


def _predict(predictor: Any, xs: np.ndarray, step: int) -> np.ndarray:
    pad = _fixed_batch(predictor) is not None
    return run_batched(lambda chunk: predictor.run(chunk)[:1], xs, step, pad=pad)[0]


def _fixed_batch(predictor: Any) -> int | None:
    """The batch size a loaded predictor's first input is fixed at, or None (any)."""
    specs = predictor.input_specs
    return specs[0].shape[0] if specs and specs[0].shape and specs[0].shape[0] is not None else None


def _default_reference() -> Any:
    from .. import assets
    from ..runtime import load

    return load(assets.mobilenet_v2())
