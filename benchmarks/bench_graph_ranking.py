"""Can a one-pass screen replace the exact activation ranking of an ONNX graph's INT8 fallbacks?

    python benchmarks/bench_graph_ranking.py [--images 32] [--smoke]

``deepseek optimize`` on an ONNX file ranks every quantized activation by the harm it does: each left in float
alone, the SQNR of the model's output against FP32 (``rank_graph_activations``, one ONNX Runtime session per
activation). On PP-OCRv4's text detector (``assets.text_detector()``, 292 activations) that takes minutes. The
candidate screen is ONNX Runtime's own ``qdq_loss_debug``: every activation's SQNR before vs after its Q→DQ pair,
from one augmented run of the INT8 graph and one of the FP32 graph over the same 8 inputs. This script times both
on the same graph and inputs and reports where the exact ranking's head lands in the screen's order. Inputs: lines
of Hamlet drawn on the bundled photos (``examples/text_detection/make_data.py``; synthetic composition of real
photos and words). Writes benchmarks/results/graph_ranking.json.

``--smoke``: a small convolutional net exported to ONNX, on random inputs; the JSON goes to
``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import add_smoke_flag, scratch_dir, write_results


def small_graph(work: Path) -> tuple[Path, np.ndarray]:
    import torch

    from deepseek.runtime.onnx_export import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1), torch.nn.Sigmoid()).eval()
    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    return export_onnx(net, (torch.from_numpy(x[:1]),), work / "small.onnx", input_names=["x"]).path, x


def detector_inputs(work: Path, images: int) -> tuple[Path, np.ndarray]:
    from deepseek import assets

    folder = work / "text"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "examples/text_detection/make_data.py"),
                    str(folder)], check=True)
    return assets.text_detector(), np.load(folder / "inputs.npy")[:images].astype(np.float32)


def screen(int8: Path, fp32: Path, feeds: list[dict[str, np.ndarray]], work: Path) -> dict[str, float]:
    """ONNX Runtime's per-activation QDQ error (SQNR, dB), one run of each augmented graph."""
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization import qdq_loss_debug as debug

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.left, None)

    debug.modify_model_output_intermediate_tensors(int8, work / "int8_all.onnx")
    debug.modify_model_output_intermediate_tensors(fp32, work / "fp32_all.onnx")
    matched = debug.create_activation_matching(debug.collect_activations(str(work / "int8_all.onnx"), Feeds()),
                                               debug.collect_activations(str(work / "fp32_all.onnx"), Feeds()))
    errors = debug.compute_activation_error({k: v for k, v in matched.items() if "float" in v})
    return {name: float(e["qdq_err"]) for name, e in errors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="calibration images (the detector run)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    from deepseek._core import machine as _machine
    from deepseek.quantization.onnx_graph import (
        feeds_of,
        prepare_graph,
        quantize_onnx_graph,
        rank_graph_activations,
    )
    from deepseek.quantization.onnx_static import _first_samples

    work = scratch_dir("bench-graph-ranking-")
    source, x = small_graph(work) if args.smoke else detector_inputs(work, args.images)
    int8 = quantize_onnx_graph(source, x, work / "int8.onnx", method="percentile").path
    fp32 = prepare_graph(source, work / "fp32.onnx")
    feeds = _first_samples(feeds_of(source, x), 8)
    started = time.perf_counter()
    local = screen(int8, fp32, feeds, work)
    screen_s = time.perf_counter() - started
    started = time.perf_counter()
    exact = rank_graph_activations(source, x)  # quantizes again inside, as optimize does: timed as a user waits
    exact_s = time.perf_counter() - started
    order = sorted(local, key=lambda name: local[name])  # lowest SQNR (most error) first
    positions = [order.index(name) if name in order else None for name in exact[:16]]
    overlap: dict[str, Any] = {str(k): len(set(exact[:k]) & set(order[:k])) for k in (8, 16, 32)}
    print(f"{len(exact)} activations: exact ranking {exact_s:.1f} s, one-pass screen {screen_s:.1f} s; the exact "
          f"top 8 at screen positions {positions[:8]}; top-k overlap {overlap}", flush=True)
    write_results(args, "graph_ranking.json", {
        "machine": _machine.describe(_machine.summary(threads=_machine.physical_cores())), "smoke": args.smoke,
        "graph": "small CNN (smoke)" if args.smoke else "PP-OCRv4 text detector (assets.text_detector())",
        "images": int(x.shape[0]), "activations": len(exact), "exact_seconds": exact_s, "screen_seconds": screen_s,
        "exact_top16_positions_in_screen": positions, "top_k_overlap": overlap})


if __name__ == "__main__":
    main()
