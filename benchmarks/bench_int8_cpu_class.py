"""Static INT8 per CPU class: ours (the layout this CPU calls for) vs ONNX Runtime U8S8 default, U8U8, OpenVINO +
NNCF and PT2E, in one run on one machine.

    python benchmarks/bench_int8_cpu_class.py [--runs 30] [--models mobilenet_v2,resnet50] [--smoke]

MobileNetV2 (real ImageNet weights) and ResNet-50 (random weights: speed and output SQNR only), each calibrated on
the same 128 random crops of the bundled photos. Rows:
- ``ours``: ``quantize_static_onnx`` as the demo calls it — the layout :func:`choose_precision` names for this CPU,
  percentile calibration, outputs float; MobileNetV2's held to its floor on 64 other crops.
- ``ort u8s8 default``: ONNX Runtime's ``quantize_static`` as its guide shows it (QDQ, U8S8, per channel, MinMax).
- ``ort u8u8``: the same with uint8 weights (never saturates).
- ``openvino + nncf``: NNCF's default PTQ of the same ONNX export, run by OpenVINO.
- ``pt2e``: torchao's X86InductorQuantizer defaults, compiled by Inductor.
Agreement with FP32 PyTorch on the 8 fixed views of each photo (all / confident / clear, as ``deepseek evaluate``)
and on 512 other random crops; latency is the median of ``--runs`` calls per row, rows interleaved in blocks and
repeated five times, batch 1 and 8, in this process (2 threads). Writes
benchmarks/results/int8_cpu_class_<class>.json (one file per CPU class, e.g. ``x86-avx2-without-vnni``).
``--smoke``: MobileNetV2 at 64x64 (1 view per photo, 8 calibration crops, 16 check crops), ResNet-18 at 64x64,
batch 1, 2 runs, no PT2E, MobileNetV2 only unless ``--models`` says otherwise (figures meaningless).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import add_smoke_flag, scratch_dir, write_results
from deepseek import assets, models
from deepseek._core.agreement import fidelity
from deepseek._core.machine import summary
from deepseek.quantization import choose_precision, quantize_static_onnx
from deepseek.quantization.sensitivity import sqnr_db
from deepseek.runtime.onnx_export import export_onnx


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a run measures: the full run's sizes by default, :data:`SMOKE` for ``--smoke``."""

    smoke: bool = False
    image_size: int = 224
    views: int = 8
    calibration: int = 128
    held_out: int = 64  # crops our floor is checked on
    crops: int = 512  # further crops agreement is measured on
    batch_sizes: tuple[int, ...] = (1, 8)
    pt2e: bool = True


SMOKE = Sizes(smoke=True, image_size=64, views=1, calibration=8, held_out=8, crops=16, batch_sizes=(1,), pt2e=False)


def cpu_class_slug(isa_class: str) -> str:
    """``x86 AVX2 without VNNI`` -> ``x86-avx2-without-vnni``: the results file's CPU class."""
    return re.sub(r"[^a-z0-9]+", "-", isa_class.lower()).strip("-")


def ort_session(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def ort_default_static(fp32: Path, calibration: torch.Tensor, output: Path, weight_type: str) -> Path:
    """ONNX Runtime's quantize_static as its documentation shows it: QDQ, per channel, MinMax."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from deepseek.quantization.onnx_static import CalibrationReader

    reader = CalibrationReader.from_batches("input", [calibration[i: i + 8].numpy() for i in range(0, len(calibration), 8)])
    quantize_static(str(fp32), str(output), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=getattr(QuantType, weight_type))
    return output


def openvino_nncf(model: torch.nn.Module, calibration: torch.Tensor, work: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        from deepseek.quantization.openvino_ptq import quantize_openvino
        from deepseek.runtime.openvino_backend import OpenVinoBackend
    except ImportError:
        return None
    try:
        result = quantize_openvino(model, calibration, work / "nncf.xml")
    except ImportError:
        return None
    backend = OpenVinoBackend(result.path, threads=torch.get_num_threads())
    return lambda x: backend.run((x,))[0]


def pt2e(model: torch.nn.Module, calibration: torch.Tensor, batch: int) -> Callable[[np.ndarray], np.ndarray]:
    """torchao's documented x86 recipe, defaults untouched, for one batch size (the graph is specialized to it)."""
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = calibration[:batch]
    with torch.no_grad():
        graph = torch.export.export(model, (example,), strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        for i in range(0, len(calibration) - batch + 1, batch):
            prepared(calibration[i: i + batch])
        compiled = torch.compile(convert_pt2e(prepared))

    def run(x: np.ndarray) -> np.ndarray:
        with inductor_config.patch(freezing=True), torch.no_grad():
            return compiled(torch.from_numpy(x)).numpy()

    return run


def in_batches(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int) -> np.ndarray:
    """``fn`` over ``x`` in calls of exactly ``batch`` rows (the last one padded), for static-shape graphs."""
    out = []
    for i in range(0, len(x), batch):
        chunk = x[i: i + batch]
        pad = batch - len(chunk)
        got = fn(np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk)
        out.append(got[: len(chunk)])
    return np.concatenate(out)


def time_rows(rows: dict[str, Callable[[np.ndarray], np.ndarray]], x: np.ndarray, runs: int) -> dict[str, float]:
    """Median ms per row: blocks of ``runs`` calls, rows interleaved, five rounds (machine drift hits all rows)."""
    import time

    samples: dict[str, list[float]] = {name: [] for name in rows}
    for fn in rows.values():
        for _ in range(3):
            fn(x)
    for _ in range(5):
        for name, fn in rows.items():
            for _ in range(runs):
                t = time.perf_counter()
                fn(x)
                samples[name].append(time.perf_counter() - t)
    return {name: 1e3 * float(np.median(v)) for name, v in samples.items()}


def measure_model(name: str, model: torch.nn.Module, sizes: Sizes, runs: int, work: Path) -> dict[str, Any]:
    model = model.eval()
    size = sizes.image_size
    calibration = assets.photo_calibration_batch(sizes.calibration, size=size)
    held_out = assets.photo_calibration_batch(sizes.held_out, size=size, seed=1)
    crops = assets.photo_calibration_batch(sizes.crops, size=size, seed=7)
    views, _ = assets.photo_batch(size, views=sizes.views)
    fp32 = export_onnx(model, calibration[:1], work / f"{name}_fp32.onnx", input_names=["input"]).path
    print(f"{name}: building the INT8 models", flush=True)
    # the floor needs real class scores: random-weight ResNet-50's are near-ties everywhere
    floor = {"held_out": held_out} if name == "mobilenet_v2" else {}
    ours = quantize_static_onnx(model, calibration, work / f"{name}_ours.onnx", method="percentile",
                                input_names=["input"], **floor)
    print(f"  ours: {ours.summary()}", flush=True)
    builders: dict[str, Callable[[int], Callable[[np.ndarray], np.ndarray]]] = {
        "onnxruntime fp32": lambda b: ort_session(fp32),
        f"ours ({ours.int8_format})": lambda b: ort_session(ours.path),
        "ort u8s8 default": lambda b: ort_session(ort_default_static(fp32, calibration, work / f"{name}_u8s8.onnx", "QInt8")),
        "ort u8u8": lambda b: ort_session(ort_default_static(fp32, calibration, work / f"{name}_u8u8.onnx", "QUInt8")),
    }
    peer = openvino_nncf(model, calibration, work)
    if peer is not None:
        builders["openvino + nncf"] = lambda b: peer
    if sizes.pt2e:
        builders["pt2e (torchao x86 default)"] = lambda b: pt2e(model, calibration, b)
    with torch.no_grad():
        ref_views = model(views).numpy()
        ref_crops = torch.cat([model(crops[i: i + 64]) for i in range(0, len(crops), 64)]).numpy()
    rows: dict[str, dict[str, Any]] = {}
    timed: dict[int, dict[str, Callable[[np.ndarray], np.ndarray]]] = {b: {} for b in sizes.batch_sizes}
    for row, build in builders.items():
        fns = {b: build(b) for b in sizes.batch_sizes}
        first = fns[sizes.batch_sizes[-1]]
        got_views = in_batches(first, views.numpy(), sizes.batch_sizes[-1])
        got_crops = in_batches(first, crops.numpy(), sizes.batch_sizes[-1])
        v, c = fidelity(ref_views, got_views), fidelity(ref_crops, got_crops)
        rows[row] = {"views": {k: v[k] for k in ("agreement", "confident_agreement", "clear_agreement", "views",
                                                   "confident_views", "clear_views")},
                     "crops": {k: c[k] for k in ("agreement", "confident_agreement", "clear_agreement", "views",
                                                   "confident_views", "clear_views")},
                     "sqnr_db": sqnr_db(torch.from_numpy(ref_crops), torch.from_numpy(got_crops))}
        for b in sizes.batch_sizes:
            timed[b][row] = fns[b]
        print(f"  {row:30s} views {v['agreement']:.1%} / {_pct(v['confident_agreement'])} / "
              f"{_pct(v['clear_agreement'])}, crops {c['agreement']:.1%} / {_pct(c['confident_agreement'])} / "
              f"{_pct(c['clear_agreement'])}, SQNR {rows[row]['sqnr_db']:.1f} dB", flush=True)
    rng = np.random.default_rng(0)
    for b in sizes.batch_sizes:
        x = crops[:b].numpy() if len(crops) >= b else rng.standard_normal((b, 3, size, size)).astype(np.float32)
        medians = time_rows(timed[b], np.ascontiguousarray(x), runs)
        base = medians["onnxruntime fp32"]
        for row, ms in medians.items():
            rows[row][f"batch{b}_ms"] = ms
            rows[row][f"batch{b}_x_ort_fp32"] = base / ms
        print(f"  batch {b}: " + "; ".join(f"{r} {ms:.2f} ms ({base / ms:.2f}x)" for r, ms in medians.items()),
              flush=True)
    return {"rows": rows, "ours": ours.to_dict() | {"summary": ours.summary()},
            "weights": "real ImageNet" if name == "mobilenet_v2" else "random (speed and SQNR only)"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="timed calls per row and round (default 30; 2 with --smoke)")
    parser.add_argument("--models", default=None, help="default mobilenet_v2,resnet50 (--smoke: mobilenet_v2)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    runs = args.runs or (2 if args.smoke else 30)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    work = scratch_dir("bench-int8-class-")
    plan = choose_precision()
    out: dict[str, Any] = {"machine": summary(), "cpu_class": plan.isa_class, "plan": dataclasses.asdict(plan),
                           "runs": runs, "threads": torch.get_num_threads()}
    if args.smoke:
        out["smoke"] = dataclasses.asdict(sizes)
    for name in (args.models or ("mobilenet_v2" if args.smoke else "mobilenet_v2,resnet50")).split(","):
        if name == "mobilenet_v2":
            model = assets.mobilenet_v2()
        elif args.smoke:
            import torchvision

            model = torchvision.models.resnet18(num_classes=10)
        else:
            model = models.get(name).model
        out[name] = measure_model(name, model, sizes, runs, work)
    write_results(args, f"int8_cpu_class_{cpu_class_slug(plan.isa_class)}.json", out)


if __name__ == "__main__":
    main()
