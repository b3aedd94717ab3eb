"""Post-training static INT8 for ONNX Runtime: QDQ, uint8 activations × int8 per-channel weights (U8S8).

U8S8 is the layout ONNX Runtime's x86 int8 kernels (VNNI/AMX) run fast; its default S8S8 gives no
speedup there (notes/x86-perf.md). Optional bias correction removes the mean shift rounded weights cause;
the activations most harmful to quantize (measured in ONNX Runtime) can stay float until the INT8 model
agrees with FP32 on the calibration data; named layers can stay entirely FP32.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._core.atomic import atomic_path
from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import DeepSeekError, invalid
from .._core.tensors import eval_mode
from .onnx_bias_correction import correct_biases
from .onnx_overflow import fix_overflow
from .onnx_qdq import float_outputs, inputs_of, leave_float, leave_named_float, quantized_activations
from .precision import resolve_int8_format
from .qat import fold_batchnorm
from .sensitivity import as_batches, sqnr_db

METHODS = ("minmax", "percentile", "entropy")
ROUNDINGS = ("nearest", "adaround", "adaround-block")


@dataclasses.dataclass(frozen=True)
class ActivationSensitivity:
    """One quantized activation left in float, all else INT8: the model's output SQNR (dB) vs FP32."""

    tensor: str
    layer: str  # the PyTorch layer producing it ("" for the model input or a functional op)
    sqnr_db: float


@dataclasses.dataclass(frozen=True)
class StaticQuantResult:
    path: Path
    method: str
    kept_fp32: list[str]  # PyTorch layers left in FP32 (``exclude``)
    float_activations: list[str]  # activations left in float (``keep_fp32``), by tensor name
    calibration_agreement: float  # top-1 agreement INT8 vs FP32 on the calibration inputs
    calibration_sqnr_db: float  # output SQNR vs FP32 on the calibration inputs
    calibration_samples: int
    size_bytes: int
    fp32_size_bytes: int
    bias_corrected_layers: int
    sensitivity: list[ActivationSensitivity]  # most harmful to quantize first (only when keep_fp32 != 0)
    adaround: dict[str, Any] | None = None  # rounding="adaround": layers, weights, flipped, output MSE before/after
    # op types left in float because their tensors carry mask sentinels (|x| >= 1e30, e.g. a transformer's
    # ``finfo.min`` attention bias): 8 bits cannot hold them, and ORT's histogram calibrators fail on them
    float_op_types: list[str] = dataclasses.field(default_factory=list)
    int8_format: str = "u8s8"  # activation x weight layout (precision.INT8_FORMATS)
    # layers whose int16 pair sums saturate (x86 without VNNI): measured error, and whether they got 7-bit weights
    overflow: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # with ``held_out``: agreement with FP32 on those inputs (all / confident / clear, as deepseek.evaluate), the
    # floor it was held to, each layout tried, and whether the written model is still below the floor
    held_out: dict[str, Any] | None = None
    min_agreement: float | None = None
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    below_floor: bool = False

    def summary(self) -> str:
        """One line: the layout written, and how it did against its floor on the held-out inputs."""
        head = f"static INT8 ({self.int8_format}"
        head += f", {len(self.float_activations)} activations float)" if self.float_activations else ")"
        if self.held_out is None:
            return f"{head}: agreement with FP32 {self.calibration_agreement:.1%} on its calibration inputs"
        h = self.held_out
        tried = " -> ".join(f"{a['int8_format']}{' + float activations' if a['keep_fp32'] else ''} "
                            f"{_pct(a['confident_agreement'])}" for a in self.attempts)
        verdict = "BELOW ITS FLOOR" if self.below_floor else "meets its floor"
        return (f"{head}: top-1 agreement with FP32 on {h['views']} held-out inputs {h['agreement']:.1%}, on the "
                f"{h['confident_views']} confident ones {_pct(h['confident_agreement'])} — {verdict} of "
                f"{self.min_agreement:.0%} (tried: {tried})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


@dataclasses.dataclass(frozen=True)
class StaticINT8Config(BaseConfig):
    """Static INT8 for ONNX Runtime (QDQ), calibrated on real data: what :func:`deepseek.quantization.quantize` and
    :func:`quantize_static_onnx` build. The fields are described there."""

    method: str = "minmax"
    percentile: float = 99.99
    per_channel: bool = True
    keep_fp32: int | str = 0
    target_agreement: float = 0.99
    exclude: tuple[str, ...] = ()
    bias_correction: bool | str = False
    float_activations: tuple[str, ...] = ()
    rounding: str = "nearest"
    int8_format: str = "auto"
    # the top-1 agreement with FP32 the held-out inputs must reach (None: no floor, held-out inputs refused)
    min_agreement: float | None = 0.95

    def __post_init__(self) -> None:
        from .precision import INT8_FORMATS

        check_choice(self.method, "method", METHODS, expected=f"one of {METHODS}")
        if self.keep_fp32 != "auto":
            check_int(self.keep_fp32, "keep_fp32", minimum=0, expected="a count >= 0 or 'auto'")
        check_choice(self.rounding, "rounding", ROUNDINGS, expected=f"one of {ROUNDINGS}")
        check_number(self.percentile, "percentile", above=50, maximum=100, expected="a number in (50, 100]")
        check_number(self.target_agreement, "target_agreement", above=0, maximum=1,
                     expected="a fraction in (0, 1], e.g. 0.99")
        check_number(self.min_agreement, "min_agreement", above=0, maximum=1, optional=True,
                     expected="a fraction in (0, 1], e.g. 0.95, or None (no floor)")
        check_flag(self.per_channel, "per_channel")
        if not (isinstance(self.bias_correction, bool) or self.bias_correction == "activations"):
            raise invalid("bias_correction", self.bias_correction, "True, False or 'activations'")
        check_choice(self.int8_format, "int8_format", ("auto", *INT8_FORMATS),
                     expected=f"'auto' or one of {sorted(INT8_FORMATS)}")
        object.__setattr__(self, "exclude", tuple(_names("exclude", self.exclude)))
        object.__setattr__(self, "float_activations", tuple(_names("float_activations", self.float_activations)))


def quantize_static_onnx(model: torch.nn.Module, calibration: Any, output: str | Path,
                         config: StaticINT8Config | None = None, *, held_out: Any = None,
                         input_names: Sequence[str] | None = None, **options: Any) -> StaticQuantResult:
    """Export ``model`` and quantize it statically for ONNX Runtime, calibrated on real ``calibration`` data.

    Pass a :class:`StaticINT8Config` or its fields as keywords (the same as
    ``quantize(model, StaticINT8Config(...), calibration=..., output=...)``).

    ``keep_fp32``: how many activations stay in float — those whose 8-bit rounding costs the output most,
    measured in ONNX Runtime one activation at a time — or ``"auto"`` for the fewest (0, 1, 2, 4, 8, ...)
    whose model reaches ``target_agreement`` top-1 agreement with FP32 on the calibration inputs. Their
    consumers then run in float with int8 weights. ``exclude`` names PyTorch layers to keep entirely in FP32
    (weights and input). ``percentile`` (for ``method="percentile"``) clips activation ranges there, as our
    percentile observer does (ORT's own default, 99.999, leaves MobileNetV2's outliers in: 13.1 vs 15.4 dB
    output SQNR, benchmarks/bench_mixed_precision.py). ``bias_correction`` removes the mean output shift
    that rounding each layer's weights causes (:mod:`.onnx_bias_correction`): MobileNetV2's output SQNR
    goes 15.4 → 16.7 dB and clear-view agreement 98.3 → 99.4% on held-out crops like the calibration data,
    but the correction is fitted to the calibration inputs' means and cost agreement on unlike views
    (grayscale, squashed); hence opt-in. ``bias_correction="activations"`` also counts each layer's own input
    rounding and clipping in the shift (on 512 held-out crops, benchmarks/bench_int8_cpu_class.py notes: confident
    agreement 96.4 → 97.4 %, fixed views 100 → 97.4 %). The model's outputs stay float (their Q/DQ pair is
    dropped: quantizing logits to 8 bits flips near-ties for no speed). ``float_activations`` names activation tensors (as in
    ``result.float_activations`` or ``result.sensitivity``) to leave in float without measuring anything: an
    earlier run's choice replayed exactly. ``rounding="adaround"`` rounds each int8 weight up or down so its
    layer's output on the calibration inputs stays closest to FP32 (:mod:`.adaround`) instead of to nearest;
    ``"adaround-block"`` does it a block at a time, each block fed by the rounded blocks before it (BRECQ).
    ``int8_format`` is the activation × weight layout (:data:`.precision.INT8_FORMATS`); ``"auto"`` takes the one
    :func:`.precision.choose_precision` names for this CPU (U8U8 on AVX2 without VNNI, where ORT's U8S8 kernels
    saturate int16 pair sums; U8S8 where VNNI/AMX add in int32).
    """
    import onnx

    from .._core.atomic import check_output
    from ..runtime.onnx_export import export_onnx, onnx_module_scopes

    config = config_or_fields(StaticINT8Config, config, options)
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    if not isinstance(output, (str, Path)) or Path(output).suffix.lower() != ".onnx":
        raise invalid("output", output, "a file name ending in .onnx")
    check_output(output, argument="output")
    fmt = resolve_int8_format(config.int8_format)
    if held_out is not None:
        if config.min_agreement is None:
            raise invalid("held_out", type(held_out).__name__, "None when min_agreement is None (no floor to hold)")
        return _with_floor(model, calibration, output, fmt.name, held_out, config, input_names)
    keep_fp32, target_agreement = config.keep_fp32, config.target_agreement
    exclude, float_activations = list(config.exclude), list(config.float_activations)
    if input_names is not None:
        input_names = _names("input_names", input_names)
    batches = calibration_batches(calibration)
    check_runs(model, batches[0][:1], argument="calibration")
    folded = eval_mode(copy.deepcopy(model))
    fold_batchnorm(folded)  # export without BN so ONNX Conv nodes carry their PyTorch layer's name
    names = dict(folded.named_modules())
    unknown = [n for n in exclude if n not in names or not n]
    if unknown:
        layers = [n for n, m in names.items() if n and isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        raise invalid("exclude", unknown[:3], f"names of layers in the model (e.g. {layers[:4]})")

    work = Path(tempfile.mkdtemp(prefix="deepseek-quant-"))
    try:
        fp32 = export_onnx(folded, batches[0][:1], work / "fp32.onnx", input_names=input_names).path
        scopes = onnx_module_scopes(fp32)
        feed_name = _input_name(fp32)
        feeds = [{feed_name: b.numpy()} for b in batches]
        ref = _run(fp32, feeds)
        excluded_nodes = _nodes_of(list(exclude), scopes)
        quantized = work / "int8.onnx"
        float_ops, overflow = quantize_qdq(fp32, quantized, feeds, fmt, config.method, config.percentile,
                                           config.per_channel, excluded_nodes)
        adaround = None
        if config.rounding != "nearest":  # before bias correction: it then removes the shift that remains
            from .adaround import adaround_qdq

            granularity = "block" if config.rounding == "adaround-block" else "layer"
            rounded, adaround = adaround_qdq(onnx.load(str(quantized)), folded, scopes, batches,
                                             granularity=granularity)
            onnx.save(rounded, str(quantized))
        bias_correction = config.bias_correction
        corrected = correct_biases(quantized, fp32, feeds, activations=bias_correction == "activations") \
            if bias_correction else 0
        qdq = onnx.load(str(quantized))
        fp32_model = onnx.load(str(fp32))
        if excluded_nodes:
            qdq = leave_float(qdq, inputs_of(qdq, excluded_nodes), fp32_model)

        if float_activations:
            qdq = leave_named_float(qdq, float_activations, fp32_model, source="this model's export")
        ranking: list[ActivationSensitivity] = []
        if keep_fp32 != 0:
            ranking = _activation_ranking(qdq, fp32_model, feeds[: max(1, len(feeds) // 2)], ref, scopes)
        best = None
        for k in _candidates(keep_fp32, len(ranking)):
            candidate = leave_float(qdq, [r.tensor for r in ranking[:k]], fp32_model) if k else qdq
            got = _run(candidate, feeds)
            agree = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
            if best is None or agree > best[2]:
                best = (candidate, k, agree, sqnr_db(torch.from_numpy(ref), torch.from_numpy(got)))
            if agree >= target_agreement:
                break
        assert best is not None
        if keep_fp32 == "auto" and best[2] < target_agreement:
            warnings.warn(f"no candidate reached {target_agreement:.1%} agreement with FP32 on the calibration data; "
                          f"kept the best ({best[2]:.1%}, {best[1]} activations in float)", stacklevel=2)
        with atomic_path(output) as tmp:
            onnx.save(best[0], str(tmp))
            size = tmp.stat().st_size
        chosen = [*float_activations, *(r.tensor for r in ranking[: best[1]] if r.tensor not in float_activations)]
        return StaticQuantResult(Path(output), config.method, list(exclude), chosen, best[2],
                                 best[3], int(ref.shape[0]), size, fp32.stat().st_size, corrected, ranking,
                                 dataclasses.asdict(adaround) if adaround is not None else None, float_ops,
                                 fmt.name, [dataclasses.asdict(r) for r in overflow if r.saturated_pairs > 0])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def quantize_qdq(fp32: Path, quantized: Path, feeds: list[dict[str, np.ndarray]], fmt: Any, method: str,
                 percentile: float, per_channel: bool, nodes_to_exclude: list[str] | None = None, *,
                 source: Any = None) -> tuple[list[str], list[Any]]:
    """ONNX Runtime's static QDQ quantization of ``fp32`` to ``quantized`` in the layout ``fmt``, calibrated
    on ``feeds``, its outputs left in float and (``fmt.overflow_fix``) its int16 saturation fixed: (op types
    kept float, the overflow measurements). With ``source``, an ORT failure is a DeepSeekError naming it."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    op_types, float_ops = _quantizable_op_types(fp32, feeds[0])
    calibrate_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                        "entropy": CalibrationMethod.Entropy}[method]
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet_root_logger():  # ORT prints progress and hints
            quantize_static(str(fp32), str(quantized), CalibrationReader(feeds), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=getattr(QuantType, fmt.activation_type),
                            weight_type=getattr(QuantType, fmt.weight_type), reduce_range=fmt.reduce_range,
                            calibrate_method=calibrate_method, nodes_to_exclude=nodes_to_exclude,
                            op_types_to_quantize=op_types,
                            extra_options={"CalibPercentile": percentile} if method == "percentile" else {})
    except Exception as exc:  # ONNX Runtime's quantizer raises plain exceptions on graphs it cannot handle
        if source is None:
            raise
        raise DeepSeekError(f"ONNX Runtime could not quantize {source}: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None
    model = onnx.load(str(quantized))
    if float_outputs(model):
        onnx.save(model, str(quantized))
    return float_ops, fix_overflow(quantized, fp32, _first_samples(feeds, 16)) if fmt.overflow_fix else []


def _with_floor(model: torch.nn.Module, calibration: Any, output: str | Path, fmt: str, held_out: Any,
                config: StaticINT8Config, input_names: Sequence[str] | None) -> StaticQuantResult:
    """Build ``fmt``, then safer layouts while agreement with FP32 on ``held_out`` is below ``floor``; write the first
    that meets it (or the best)."""
    from .._core.agreement import fidelity
    from .._core.atomic import check_output

    check_output(output, argument="output")
    keep_fp32, floor = config.keep_fp32, float(config.min_agreement)
    # in calls of the calibration batch size: a model exported for one fixed batch takes no other
    rows = calibration_batches(calibration)[0].shape[0]
    held = torch.cat(calibration_batches(held_out, argument="held_out"))
    chunks = [c for c in held.split(rows) if c.shape[0] == rows] or [held]
    outputs = []
    with torch.no_grad():
        for chunk in chunks:
            got = eval_mode(model)(chunk)
            outputs.append(got[0] if isinstance(got, (tuple, list)) else got)
    if not all(isinstance(o, torch.Tensor) and o.dim() == 2 for o in outputs):
        shape = getattr(outputs[0], "shape", type(outputs[0]).__name__)
        raise invalid("held_out", f"a model whose output is {shape}",
                      "a classifier with (N, classes) outputs (top-1 agreement is the floor's measure)")
    reference = torch.cat(outputs)
    plan = [(fmt, keep_fp32)]
    if fmt != "u8u8":
        plan.append(("u8u8", keep_fp32))
    if keep_fp32 != "auto":
        plan.append(("u8u8", "auto"))
    work = Path(tempfile.mkdtemp(prefix="deepseek-floor-"))
    try:
        best: tuple[float, Path, StaticQuantResult, dict[str, Any]] | None = None
        attempts = []
        for i, (layout, keep) in enumerate(plan):
            path = work / f"attempt{i}.onnx"
            attempt = dataclasses.replace(config, keep_fp32=keep, int8_format=layout,
                                          target_agreement=max(floor, config.target_agreement))
            built = quantize_static_onnx(model, calibration, path, attempt, input_names=input_names)
            name = _input_name(path)
            got = fidelity(reference.numpy().astype(np.float64), _run(path, [{name: c.numpy()} for c in chunks]))
            score = got["confident_agreement"] if got["confident_views"] else got["agreement"]
            attempts.append({"int8_format": layout, "keep_fp32": keep, "float_activations": len(built.float_activations),
                             "agreement": got["agreement"], "confident_agreement": score})
            if best is None or score > best[0]:
                best = (score, path, built, got)
            if score >= floor:
                break
        assert best is not None
        score, path, built, got = best
        with atomic_path(output) as tmp:
            shutil.copyfile(path, tmp)
        return dataclasses.replace(built, path=Path(output), held_out=got, min_agreement=floor, attempts=attempts,
                                   below_floor=score < floor)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _first_samples(feeds: list[dict[str, np.ndarray]], count: int) -> list[dict[str, np.ndarray]]:
    """The first feeds holding at least ``count`` samples, batches kept as they are (a model may be exported for
    one fixed batch size)."""
    taken, rows = [], 0
    for feed in feeds:
        if rows >= count:
            break
        taken.append(feed)
        rows += next(iter(feed.values())).shape[0]
    return taken


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _names(argument: str, names: Any) -> list[str]:
    """A list of names from a string (one name) or an iterable of non-empty strings."""
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise invalid(argument, names, "a list of names") from None
    if not all(isinstance(n, str) and n for n in names):
        raise invalid(argument, names, "a list of non-empty strings")
    return names


def check_runs(model: torch.nn.Module, sample: torch.Tensor, *, argument: str) -> None:
    """Refuse, naming ``argument``, inputs the model cannot run on (wrong shape or dtype): one sample, no gradients."""
    was_training = model.training
    try:
        with torch.no_grad():
            eval_mode(model)(sample)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise invalid(argument, f"inputs of shape {list(sample.shape)} ({str(sample.dtype).removeprefix('torch.')})",
                      f"inputs the model accepts (it raised {type(exc).__name__}: {first})") from None
    finally:
        if was_training:
            with contextlib.suppress(NotImplementedError):
                model.train()


def calibration_batches(calibration: Any, *, argument: str = "calibration") -> list[torch.Tensor]:
    """``calibration`` — a tensor or array (split in batches of 16), or an iterable of tensors or (inputs, labels)
    pairs — as a list of non-empty, finite input batches; anything else is an error naming ``argument``."""
    from .._core.arrays import check_array

    if isinstance(calibration, np.ndarray):
        calibration = torch.from_numpy(check_array(calibration, argument=argument))
    if isinstance(calibration, (str, bytes)) or calibration is None:
        raise invalid(argument, calibration, "a tensor of real inputs or a list of input batches")
    try:
        batches = as_batches(calibration)
    except TypeError:
        raise invalid(argument, type(calibration).__name__, "a tensor of real inputs or a list of input batches") from None
    if not batches:
        raise invalid(argument, "empty", "at least one batch of real inputs")
    for i, batch in enumerate(batches):
        if isinstance(batch, np.ndarray):
            batch = batches[i] = torch.from_numpy(batch)
        if not isinstance(batch, torch.Tensor) or batch.dim() < 1 or batch.numel() == 0:
            raise invalid(f"{argument}[{i}]", type(batch).__name__ if not isinstance(batch, torch.Tensor)
                          else f"a tensor of shape {list(batch.shape)}", "a non-empty tensor of inputs")
        if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
            raise invalid(f"{argument}[{i}]", "NaN or infinite values", "finite inputs")
    return batches


SENTINEL = 1e30  # a float tensor holding values this large is a mask, not an activation


def _quantizable_op_types(fp32: Path, feed: dict[str, np.ndarray]) -> tuple[list[str] | None, list[str]]:
    """(op types to quantize, op types kept float): all (None: ORT's default) unless some tensor on one
    calibration batch holds non-finite or sentinel values, whose producers and consumers then stay float."""
    import onnx
    import onnxruntime as ort

    from ..runtime.backends import session_options

    model = onnx.load(str(fp32))
    produced = {o for n in model.graph.node for o in n.output if o}
    known = {o.name for o in model.graph.output}
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in sorted(produced | known))
    try:
        session = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
        values = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    except Exception:  # an output ORT cannot expose untyped: keep ORT's default op types
        return None, []
    flagged = {name for name, v in values.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size
               and not (np.isfinite(v).all() and float(np.abs(v).max()) < SENTINEL)}
    if not flagged:
        return None, []
    float_ops = sorted({n.op_type for n in model.graph.node if flagged & ({*n.input} | {*n.output})})
    keep = sorted({n.op_type for n in model.graph.node} - set(float_ops))
    return keep, float_ops


def _activation_ranking(qdq: Any, fp32: Any, feeds: list[dict[str, np.ndarray]], ref: np.ndarray,
                        scopes: dict[str, str]) -> list[ActivationSensitivity]:
    """Every quantized activation left in float alone, most helpful (i.e. most harmful to quantize) first."""
    from .._core.progress import progress

    reference = torch.from_numpy(ref[: sum(next(iter(f.values())).shape[0] for f in feeds)])
    tensors = quantized_activations(qdq)
    ranking = []
    with progress() as bar:
        task = bar.add_task("activation sensitivity (ONNX Runtime)", total=len(tensors))
        for t in tensors:
            got = torch.from_numpy(_run(leave_float(qdq, [t], fp32), feeds))
            ranking.append(ActivationSensitivity(t, scopes.get(t, ""), sqnr_db(reference, got)))
            bar.update(task, advance=1)
    return sorted(ranking, key=lambda r: -r.sqnr_db)


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _nodes_of(layers: list[str], scopes: dict[str, str]) -> list[str]:
    """ONNX nodes of each layer and of the activation that follows it inside the same block
    (``features.1.conv.0.0`` → also ``features.1.conv.0.2``, its ReLU6), so the layer's output stays FP32."""
    blocks = {name.rpartition(".")[0] for name in layers}
    return sorted({node for node, scope in scopes.items()
                   if scope in layers or (scope.rpartition(".")[0] in blocks and scope.rpartition(".")[0])})


def _candidates(keep: int | str, n_layers: int) -> list[int]:
    """``keep`` itself, or for ``"auto"`` 0 and every power of two below ``n_layers``."""
    return [int(keep)] if keep != "auto" else [0, *(2 ** i for i in range(max(0, n_layers - 1).bit_length()))]


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _run(model: Path | Any, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """First output of the ONNX model (a path or a loaded ModelProto) over ``feeds``, concatenated."""
    import onnxruntime as ort

    from ..runtime.backends import session_options

    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    s = ort.InferenceSession(source, session_options(), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, feed)[0] for feed in feeds])


class CalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of feeds (``{input_name: array}`` per batch),
    for ``onnxruntime.quantization.quantize_static`` when driving it directly (as the benchmarks' peer rows do)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        if not feeds:
            raise invalid("feeds", "empty", "at least one {input_name: array} batch")
        self._feeds, self._next = list(feeds), 0

    @classmethod
    def from_batches(cls, input_name: str, batches: Any) -> CalibrationReader:
        """One feed per batch (tensors or arrays) of the model's single input ``input_name``."""
        return cls([{input_name: b.numpy() if hasattr(b, "numpy") else np.asarray(b)} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        """Start over (ORT's entropy and percentile calibrators read the data more than once)."""
        self._next = 0
