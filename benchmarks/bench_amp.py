"""bfloat16 autocast vs float32 training on this CPU: step time, activation memory and accuracy, same run.

    python benchmarks/bench_amp.py [--runs 5] [--epochs 1] [--smoke]

1. ResNet-50 (torchvision, random init: speed and memory only), batch 8, 224x224, SGD: median training step
   (forward + backward + step) over ``--runs`` interleaved steps, and the bytes autograd keeps for backward
   (``saved_activation_bytes``), float32 vs ``deepseek.amp.autocast()`` (bfloat16 where the CPU has it).
2. The demo CNN on Fashion-MNIST (60k train / 10k test; MNIST-5k when absent), ``--epochs`` of Adam from the
   same seed, float32 vs bfloat16 autocast (with ``GradScaler``, a pass-through for bfloat16): test accuracy.
2 threads. Writes benchmarks/results/amp.json. ``--smoke``: the same two parts on tiny sizes — resnet18 with 10
classes at 64x64 (key ``resnet18``), the CNN on the first 512 training and 256 test images, 2 runs, 1 epoch;
figures meaningless, written outside benchmarks/results.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torchvision

from _common import add_smoke_flag, write_results
from deepseek._core.machine import summary
from deepseek.demo.pruned import _cnn, _labeled, _subset
from deepseek.graph import saved_activation_bytes
from deepseek.train import accuracy, amp

LABELS = {"resnet50": "ResNet-50", "resnet18": "ResNet-18"}


def resnet_steps(runs: int, arch: str = "resnet50", size: int = 224, classes: int = 1000) -> dict[str, Any]:
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, size, size), torch.randint(0, classes, (8,))
    build = getattr(torchvision.models, arch)
    models = {"fp32": build(num_classes=classes).train(), "bf16 autocast": build(num_classes=classes).train()}
    models["bf16 autocast"].load_state_dict(models["fp32"].state_dict())
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    dtype = {"fp32": "fp32", "bf16 autocast": None}  # None: what autocast picks for this CPU
    times: dict[str, list[float]] = {k: [] for k in models}
    saved = {}
    for k, m in models.items():
        with amp.autocast("cpu", dtype=dtype[k]) as used:
            saved[k] = saved_activation_bytes(m, x)
        saved[f"{k} dtype"] = str(used).replace("torch.", "")
    for i in range(runs + 1):
        for k, m in models.items():
            t0 = time.perf_counter()
            with amp.autocast("cpu", dtype=dtype[k]):
                loss = torch.nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opts[k].step()
            opts[k].zero_grad(set_to_none=True)
            if i:  # the first round warms up
                times[k].append(time.perf_counter() - t0)
    out = {k: {"step_ms": statistics.median(times[k]) * 1e3, "saved_activation_mb": saved[k] / 2 ** 20,
               "dtype": saved[f"{k} dtype"]} for k in models}
    print(f"{LABELS.get(arch, arch)} bs8 training: " + "  ".join(f"{k}: {v['step_ms']:.0f} ms/step, {v['saved_activation_mb']:.0f} MiB "
                                                 f"saved ({v['dtype']})" for k, v in out.items()), flush=True)
    return out


def fashion(epochs: int, train_images: int | None = None, test_images: int | None = None) -> dict[str, Any]:
    train, test = _labeled()
    train, test = _subset(train, train_images), _subset(test, test_images)  # None: all of it
    out = {}
    for name, dtype in (("fp32", "fp32"), ("bf16 autocast", None)):
        torch.manual_seed(0)
        model = _cnn().train()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        scaler = amp.GradScaler("cpu", dtype=dtype)
        started = time.perf_counter()
        for _ in range(epochs):
            for x, y in train.loader(64, shuffle=True, seed=1):
                with amp.autocast("cpu", dtype=dtype):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
        out[name] = {"accuracy": accuracy(model, test), "train_s": time.perf_counter() - started}
        print(f"{train.name} CNN, {epochs} epoch(s), {name}: test accuracy {out[name]['accuracy']:.2%} "
              f"({out[name]['train_s']:.0f} s)", flush=True)
    return {"data": train.name, "train": len(train), "test": len(test), "epochs": epochs, "rows": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    add_smoke_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.smoke:
        args.runs, args.epochs = 2, 1
        arch, resnet, images = "resnet18", {"size": 64, "classes": 10}, {"train_images": 512, "test_images": 256}
    else:
        arch, resnet, images = "resnet50", {}, {}
    out = {"machine": summary(2), "autocast_dtype": str(amp.choose_dtype("cpu")),
           arch: resnet_steps(args.runs, arch, **resnet), "fashion_cnn": fashion(args.epochs, **images)}
    write_results(args, "amp.json", out)


if __name__ == "__main__":
    main()
