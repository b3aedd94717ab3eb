"""TensorFlow / Keras models in: a ``.keras`` file or a SavedModel folder to ONNX through tf2onnx, verified against
TensorFlow's own outputs, so quantization, compilation and serving take it like any other ONNX model.

Keras files are loaded with ``safe_mode=True`` (a Lambda layer's pickled code is refused), a SavedModel through its
``serving_default`` signature. An operation tf2onnx cannot express in standard ONNX is an error naming it (tf2onnx
itself only logs it and writes a graph ONNX Runtime cannot load). TensorFlow comes from the ``tf`` extra
(tensorflow-cpu 2.21, tf2onnx 1.17) and is imported only here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from .._core.checks import check_int
from .._core.errors import ArtifactError, VerificationError, invalid, require

KERAS_SUFFIXES = (".keras", ".h5")
_EXTRA = "pip install 'deepseek-core[tf]' (tensorflow-cpu==2.21.0, tf2onnx==1.17.0)"


def is_tensorflow_model(path: str | os.PathLike[str]) -> bool:
    """A Keras file or a SavedModel folder."""
    p = Path(path)
    return (p.is_file() and p.suffix.lower() in KERAS_SUFFIXES) or (p.is_dir() and (p / "saved_model.pb").is_file())


@dataclasses.dataclass(frozen=True)
class TensorFlowExport:
    path: Path
    kind: str  # "keras" or "saved_model"
    opset: int
    inputs: list[str]
    size_bytes: int
    max_abs_diff: float
    tolerance: float


def export_tensorflow(source: str | os.PathLike[str], output: str | os.PathLike[str], *, opset: int = 17,
                      dynamic_batch: bool = True, seed: int = 0) -> TensorFlowExport:
    """Convert ``source`` to ONNX at ``output`` (atomically) and check ONNX Runtime's outputs against TensorFlow's
    on seeded random inputs (batch 2)."""
    source, output = Path(source), Path(output)
    if not is_tensorflow_model(source):
        raise invalid("model", str(source), f"a Keras file ({', '.join(KERAS_SUFFIXES)}) or a SavedModel folder "
                      "(holding saved_model.pb)")
    if output.suffix.lower() != ".onnx":
        raise invalid("output", str(output), "a file name ending in .onnx")
    from .._core.atomic import check_output

    check_output(output, argument="output", inputs=(source, *(source.iterdir() if source.is_dir() else ())))
    check_int(opset, "opset", minimum=7, expected="an ONNX opset (an integer, 7 or more)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "TensorFlow/Keras models", _EXTRA)
    tf2onnx = require("tf2onnx", "TensorFlow/Keras models", _EXTRA)
    newest = max(getattr(tf2onnx.constants, "OPSET_TO_IR_VERSION", {opset: 0}))
    if opset > newest:
        raise invalid("opset", opset, f"an ONNX opset from 7 to {newest} (what the installed tf2onnx supports)")
    import numpy as np

    if source.is_file():
        kind = "keras"
        import keras

        try:
            model = keras.models.load_model(source, compile=False, safe_mode=True)
        except Exception as e:  # keras raises many types for a corrupt or foreign file
            raise ArtifactError(f"model: {source} could not be loaded as a Keras model ({type(e).__name__}: "
                                f"{' '.join(str(e).split())[:300]})") from None
        specs = [tf.TensorSpec([None if (i == 0 and dynamic_batch) else d for i, d in enumerate(t.shape)],
                               t.dtype, name=f"input_{n}") for n, t in enumerate(model.inputs)]
        function = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]), input_signature=specs)
        names = [s.name for s in specs]

        def reference(arrays: list[Any]) -> list[Any]:
            out = model(arrays if len(arrays) > 1 else arrays[0], training=False)
            return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

        with _quiet(tf):
            proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    else:
        kind = "saved_model"
        try:
            loaded = tf.saved_model.load(str(source))
            signature = loaded.signatures["serving_default"]
        except Exception as e:  # a corrupt saved_model.pb, or no such signature
            raise ArtifactError(f"model: {source} has no usable serving_default signature ({type(e).__name__}: "
                                f"{' '.join(str(e).split())[:300]})") from None
        _, kwargs = signature.structured_input_signature
        names = sorted(kwargs)
        specs = [kwargs[n] for n in names]
        order = sorted(signature.structured_outputs)
        function = tf.function(lambda *xs: [signature(**dict(zip(names, xs, strict=True)))[k] for k in order],
                               input_signature=[tf.TensorSpec([None if (i == 0 and dynamic_batch) else d
                                                               for i, d in enumerate(s.shape)], s.dtype, name=n)
                                                for n, s in zip(names, specs, strict=True)])

        def reference(arrays: list[Any]) -> list[Any]:
            out = signature(**dict(zip(names, (tf.constant(a) for a in arrays), strict=True)))
            return [np.asarray(out[k]) for k in order]

        with _quiet(tf):
            proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature,
                                                     opset=opset)
    _check_ops(proto, source)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal([2 if d is None else d for d in s.shape]).astype(s.dtype.as_numpy_dtype)
              for s in specs]
    expected = reference(arrays)
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays, strict=True)})
    diff = max(float(np.abs(np.asarray(g, dtype=np.float64) - np.asarray(e, dtype=np.float64)).max())
               for g, e in zip(got, expected, strict=True))
    scale = max(1.0, max(float(np.abs(e).max()) for e in expected))
    tolerance = 1e-4 * scale
    if not diff <= tolerance:
        raise VerificationError(f"export: ONNX Runtime differs from TensorFlow by {diff:.3g} (tolerance "
                                f"{tolerance:.3g}) on {source}")
    from .._core.atomic import atomic_path

    with atomic_path(output) as tmp:
        Path(tmp).write_bytes(proto.SerializeToString())
    return TensorFlowExport(output, kind, opset, [i.name for i in session.get_inputs()], output.stat().st_size, diff,
                            tolerance)


def _check_ops(proto: Any, source: Path) -> None:
    """Every node must be a standard ONNX operator (tf2onnx leaves what it cannot convert as a TensorFlow op)."""
    import onnx

    unsupported = sorted({n.op_type for n in proto.graph.node
                          if not onnx.defs.has(n.op_type, n.domain or "")})
    if unsupported:
        raise invalid("model", str(source), f"a model tf2onnx can convert: these TensorFlow operations have no ONNX "
                      f"form: {', '.join(unsupported)}")


class _quiet:
    """Silence TensorFlow's and tf2onnx's deprecation chatter during conversion."""

    def __init__(self, tf: Any) -> None:
        self.tf = tf

    def __enter__(self) -> None:
        import logging

        self.levels = {name: logging.getLogger(name).level for name in ("tensorflow", "tf2onnx")}
        for name in self.levels:
            logging.getLogger(name).setLevel(logging.ERROR)

    def __exit__(self, *exc: Any) -> None:
        import logging

        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
