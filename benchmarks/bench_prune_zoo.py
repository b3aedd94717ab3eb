"""Structured pruning over the whole torchvision classification zoo: which models ``prune_channels`` handles.

    python benchmarks/bench_prune_zoo.py [--ratio 0.25] [--models a,b,...] [--smoke]

Every model of ``torchvision.models.list_models(module=torchvision.models)``, random weights, 10 classes, batch 1 at
64x64 (inception_v3 96, maxvit_t 224 — its window partition needs it; ViTs at 64, or 56 with 14-pixel patches),
pruned at ``--ratio`` of the channels, each in a process of its own (a model that runs out of memory cannot take
the others with it). A model passes when the pruned model runs, its output shape is unchanged, its outputs are
finite and it has fewer parameters; a model ``prune_channels`` refuses is listed with the one-line reason (the
refusal is the contract: never a traceback). Writes benchmarks/results/prune_zoo.json: per model the status,
parameter and MAC ratios, the layers kept whole and the seconds it took. ``--smoke``: squeezenet1_1 and
shufflenet_v2_x0_5 (one pass, one refusal).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_smoke_flag, write_results

ONE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch, torchvision
torch.set_num_threads(1)
from deepseek import DeepSeekError
from deepseek.pruning import prune_channels

name, ratio = sys.argv[1], float(sys.argv[2])
kwargs, size = {"num_classes": 10}, 64
if name.startswith("vit_"):
    size = 56 if "14" in name else 64
    kwargs["image_size"] = size
if name in ("googlenet", "inception_v3"):
    kwargs.update(aux_logits=False, init_weights=False)
    size = 96 if name == "inception_v3" else 64
if name == "maxvit_t":
    size = 224
torch.manual_seed(0)
started = time.perf_counter()
model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
x = torch.randn(1, 3, size, size)
with torch.no_grad():
    shape = model(x).shape
row = {"model": name, "size": size}
try:
    result = prune_channels(model, ratio, x, inplace=True)
    with torch.no_grad():
        out = result.model(x)
    ok = out.shape == shape and result.params_after < result.params_before and bool(torch.isfinite(out).all())
    row.update(status="pass" if ok else "wrong", params=result.param_ratio, macs=result.mac_ratio,
               kept_whole=list(result.protected))
except DeepSeekError as exc:
    row.update(status="refused", reason=str(exc))
row["seconds"] = round(time.perf_counter() - started, 1)
print(json.dumps(row))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--models", default=None, help="comma-separated names (default: the whole zoo)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model")
    add_smoke_flag(parser)
    args = parser.parse_args()
    import torchvision

    names = (["squeezenet1_1", "shufflenet_v2_x0_5"] if args.smoke else
             args.models.split(",") if args.models else torchvision.models.list_models(module=torchvision.models))
    rows = []
    for i, name in enumerate(names, 1):
        try:
            done = subprocess.run([sys.executable, "-c", ONE, name, str(args.ratio)], capture_output=True, text=True,
                                  timeout=args.timeout)
            lines = done.stdout.strip().splitlines()
            row = json.loads(lines[-1]) if done.returncode == 0 and lines else {
                "model": name, "status": "crash", "reason": done.stderr.strip().splitlines()[-1:]}
        except subprocess.TimeoutExpired:
            row = {"model": name, "status": "timeout", "reason": f"over {args.timeout:g} s"}
        rows.append(row)
        print(f"[{i}/{len(names)}] {name}: {row['status']} " + (f"params {row['params']:.2f}" if "params" in row
                                                               else str(row.get("reason", ""))[:160]), flush=True)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("pass", "refused", "wrong", "crash", "timeout")}
    print(json.dumps(counts))
    write_results(args, "prune_zoo.json", {"ratio": args.ratio, "counts": counts, "rows": rows})
    if counts["wrong"] or counts["crash"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
