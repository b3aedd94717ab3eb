"""The demo's second table: a CNN trained here on real labeled images, pruned (50% of channels, fine-tuned)
and quantized to static INT8, against the dense FP32 model — accuracy, latency and size in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

STEPS = ("train a CNN on real labeled images", "prune 50% of channels, fine-tune", "quantize the pruned model to INT8",
         "accuracy and latency, dense vs pruned vs pruned + INT8")


def _cnn() -> torch.nn.Module:
    def block(i: int, o: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(i, o, 3, padding=1, bias=False), torch.nn.BatchNorm2d(o), torch.nn.ReLU()]

    return torch.nn.Sequential(*block(1, 32), torch.nn.MaxPool2d(2), *block(32, 64), torch.nn.MaxPool2d(2),
                               *block(64, 128), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, 10))


def _labeled() -> tuple[Any, Any]:
    """Fashion-MNIST (60k/10k) when installed, else MNIST-5k split 80/20."""
    from .. import assets

    if assets.available()["fashion_mnist"]:
        return assets.fashion_mnist("train"), assets.fashion_mnist("test")
    return assets.mnist_5k().split(0.2, seed=0)


def _subset(data: Any, n: int | None, offset: int = 0) -> Any:
    from ..assets import Dataset

    if n is None or n >= len(data):
        return data
    rows = torch.arange(offset, offset + n) % len(data)
    return Dataset(data.name, data.x[rows], data.y[rows], data.classes)


def _onnx_accuracy(path: Path, data: Any) -> float:
    from ..runtime import load

    predictor = load(path, backend="onnxruntime")
    hits = [torch.from_numpy(predictor(x.numpy())).argmax(1) == y for x, y in data.loader(500)]
    return float(torch.cat(hits).float().mean())


def pruned_int8(out: Path, bar: Any, task: Any, *, epochs: int, train_images: int | None, runs: int,
                batch_sizes: tuple[int, ...]) -> tuple[dict[str, Any], torch.nn.Module, str]:
    """Train, prune, fine-tune, quantize and measure; advances ``bar``'s ``task`` one step per stage. Returns the
    figures, the dense model and the name of its data set (for ``deepseek optimize``)."""
    from ..bench import benchmark
    from ..compile import export_onnx
    from ..pruning import prune_channels
    from ..quantization import quantize_static_onnx
    from ..train import accuracy, fit_classifier

    train, test = _labeled()
    train = _subset(train, train_images)
    torch.manual_seed(0)
    bar.update(task, description=STEPS[0])
    dense = fit_classifier(_cnn(), train, epochs=epochs, lr=3e-3, batch_size=128)
    bar.update(task, advance=1, description=STEPS[1])
    # progressive: 2 steps of 25%, each followed by a third of an epoch at a lower learning rate
    finetune_images = max(len(train) // 3, 1)
    pruned = prune_channels(
        dense, 0.5, train.x[:2], steps=2, round_to=8,
        finetune=lambda m, step: fit_classifier(m, _subset(train, finetune_images, step * finetune_images),
                                                epochs=1, lr=1e-3, batch_size=128, seed=step))
    bar.update(task, advance=1, description=STEPS[2])
    example = train.x[:1]
    dense_onnx = export_onnx(dense, example, out / "cnn_dense.onnx", input_names=["input"]).path
    pruned_onnx = export_onnx(pruned.model, example, out / "cnn_pruned.onnx", input_names=["input"]).path
    calibration = list(_subset(train, 512, offset=len(train) // 2).x.split(64))
    int8 = quantize_static_onnx(pruned.model, calibration, out / "cnn_pruned_int8.onnx", method="percentile",
                                input_names=["input"])
    bar.update(task, advance=1, description=STEPS[3])
    variants = {"dense FP32, PyTorch eager": (dense, "eager"), "dense FP32, ONNX Runtime": (dense_onnx, "onnxruntime"),
                "pruned 50% FP32, ONNX Runtime": (pruned_onnx, "onnxruntime"),
                "pruned 50% + INT8, ONNX Runtime": (int8.path, "onnxruntime")}
    rows = []
    for name, (model, backend) in variants.items():
        acc = accuracy(model, test) if isinstance(model, torch.nn.Module) else _onnx_accuracy(model, test)
        bench = benchmark(model, example, backends=[backend], batch_sizes=list(batch_sizes), runs=runs, progress=False)
        latency = {r.batch_size: (r.latency.median_ms if r.status == "ok" else None) for r in bench.rows}
        rows.append({"variant": name, "accuracy": acc, "median_ms": latency, "size_mb": bench.rows[0].artifact_mb})
    bar.update(task, advance=1)
    figures = {"data": f"{train.name} ({len(train)} training, {len(test)} held-out images)", "epochs": epochs,
               "pruning": pruned.to_dict(), "rows": rows, "machine": bench.machine}
    return figures, dense, "fashion-mnist" if train.name.startswith("fashion-mnist") else "mnist-5k"


def table(result: dict[str, Any]) -> Any:
    """A rich table of :func:`pruned_int8`'s result, ratios against the dense eager model."""
    from .._core.table import Table

    rows = result["rows"]
    base = rows[0]
    batch_sizes = list(base["median_ms"])
    t = Table(title=f"CNN trained on {result['data']}: dense → pruned → pruned + INT8", title_justify="left")
    t.add_column("variant")
    t.add_column("held-out accuracy", justify="right")
    for b in batch_sizes:
        t.add_column(f"batch {b} median ms", justify="right")
    t.add_column("size MB", justify="right")
    for r in rows:
        cells = []
        for b in batch_sizes:
            ms, ref = r["median_ms"][b], base["median_ms"][b]
            cells.append("failed" if ms is None else f"{ms:.3f}" + (f" ({ref / ms:.1f}x)" if ref and r is not base else ""))
        delta = "" if r is base else f" ({100 * (r['accuracy'] - base['accuracy']):+.2f} pt)"
        t.add_row(r["variant"], f"{r['accuracy']:.2%}{delta}", *cells, f"{r['size_mb']:.2f}")
    return t
