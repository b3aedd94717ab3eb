"""bfloat16 autocast vs float32 training on this CPU: step time, activation memory and accuracy, same run.

    python benchmarks/bench_amp.py [--runs 5] [--epochs 1]

1. ResNet-50 (torchvision, random init: speed and memory only), batch 8, 224x224, SGD: median training step
   (forward + backward + step) over ``--runs`` interleaved steps, and the bytes autograd keeps for backward
   (``saved_activation_bytes``), float32 vs ``deepseek.amp.autocast()`` (bfloat16 where the CPU has it).
2. The demo CNN on Fashion-MNIST (60k train / 10k test; MNIST-5k when absent), ``--epochs`` of Adam from the
   same seed, float32 vs bfloat16 autocast (with ``GradScaler``, a pass-through for bfloat16): test accuracy.
2 threads. Writes benchmarks/results/amp.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

from deepseek import amp
from deepseek._machine import summary
from deepseek.demo_pruned import _cnn, _labeled
from deepseek.graph import saved_activation_bytes
from deepseek.train import accuracy

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def resnet_steps(runs: int) -> dict[str, Any]:
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 224, 224), torch.randint(0, 1000, (8,))
    models = {"fp32": torchvision.models.resnet50().train(), "bf16 autocast": torchvision.models.resnet50().train()}
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
    print("ResNet-50 bs8 training: " + "  ".join(f"{k}: {v['step_ms']:.0f} ms/step, {v['saved_activation_mb']:.0f} MiB "
                                                 f"saved ({v['dtype']})" for k, v in out.items()), flush=True)
    return out


def fashion(epochs: int) -> dict[str, Any]:
    train, test = _labeled()
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
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = {"machine": summary(2), "autocast_dtype": str(amp.choose_dtype("cpu")), "resnet50": resnet_steps(args.runs),
           "fashion_cnn": fashion(args.epochs)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "amp.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'amp.json'}")


if __name__ == "__main__":
    main()
