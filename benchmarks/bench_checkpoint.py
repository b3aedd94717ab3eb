"""Incremental checkpoints against full DCP saves: seconds and bytes written per checkpoint; one run.

    python benchmarks/bench_checkpoint.py [--steps 6] [--smoke]

A real fine-tune of SmolLM2-135M-Instruct (bundled; Llama architecture) on Hamlet (bundled), checkpointed after
every optimizer step two ways in the same run, both with files flushed to disk (fsync):
- baseline: ``torch.distributed.checkpoint.save`` of the whole state (model + optimizer) into a fresh folder,
  as a DCP user saves each checkpoint;
- ours: ``IncrementalCheckpointer.save`` of the same state into one store (only chunks not already stored are
  written; the first save writes everything).
Two regimes: LoRA (peft, rank 8 on q/v projections: the base weights frozen — most of the state never changes)
and full training (every weight and both Adam moments change each step: little to skip). Reported per regime:
the median seconds and MB written per checkpoint after the first, and the first. The loaded state is checked
equal to the saved one. Writes benchmarks/results/checkpoint.json. ``--smoke``: a small MLP, 3 steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from _common import add_smoke_flag, scratch_dir, write_results
from deepseek._core.machine import describe, summary
from deepseek.train import IncrementalCheckpointer


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def lm_batches(tokenizer: Any, steps: int, seq: int = 128, batch: int = 2) -> list[torch.Tensor]:
    from deepseek import assets

    ids = tokenizer(assets.hamlet()[:200_000], return_tensors="pt")["input_ids"][0]
    out = []
    for step in range(steps):
        start = step * batch * seq
        out.append(ids[start:start + batch * seq].reshape(batch, seq))
    return out


def setup(regime: str, smoke: bool, steps: int) -> tuple[torch.nn.Module, Any, list, Any]:
    torch.manual_seed(0)
    if smoke:
        model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                    torch.nn.ReLU(), torch.nn.Linear(512, 64))
        if regime == "lora":
            for p in model[:3].parameters():
                p.requires_grad_(False)
        batches = [torch.randn(8, 64) for _ in range(steps)]  # smoke only: sizes matter, not the data

        def loss_fn(m: torch.nn.Module, b: torch.Tensor) -> torch.Tensor:
            return (m(b) - b).pow(2).mean()
    else:
        from deepseek import assets

        model, tokenizer = assets.smollm2()
        if regime == "lora":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
        batches = lm_batches(tokenizer, steps)

        def loss_fn(m: torch.nn.Module, b: torch.Tensor) -> torch.Tensor:
            return m(input_ids=b, labels=b).loss
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimizer, batches, loss_fn


def run(regime: str, smoke: bool, steps: int) -> dict[str, Any]:
    import torch.distributed.checkpoint as dcp

    model, optimizer, batches, loss_fn = setup(regime, smoke, steps)
    root = scratch_dir(f"bench-checkpoint-{regime}-")
    store = IncrementalCheckpointer(root / "incremental", keep=steps + 1, full_every=1000)
    rows = []
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    for step, batch in enumerate(batches):
        model.train()
        optimizer.zero_grad()
        loss_fn(model, batch).backward()
        optimizer.step()
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        folder = root / "dcp" / f"step_{step}"
        t0 = time.perf_counter()
        dcp.save(state, checkpoint_id=str(folder))
        dcp_seconds = time.perf_counter() - t0
        dcp_bytes = folder_bytes(folder)
        before = store.store_bytes()
        stats = store.save(step, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step})
        rows.append({"step": step, "dcp_seconds": dcp_seconds, "dcp_mb": dcp_bytes / 2**20,
                     "ours_seconds": stats.seconds, "ours_mb_written": stats.bytes_written / 2**20,
                     "ours_store_growth_mb": (store.store_bytes() - before) / 2**20,
                     "state_mb": stats.state_bytes / 2**20})
        print(f"  {regime} step {step}: DCP {dcp_seconds:.2f} s {dcp_bytes / 2**20:.1f} MB | ours "
              f"{stats.seconds:.2f} s {stats.bytes_written / 2**20:.1f} MB written", flush=True)
    loaded = store.load(len(batches) - 1)["model"]
    exact = all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    later = rows[1:]
    out = {"trainable_params": trainable, "params": total, "steps": len(rows), "exact_resume_state": exact,
           "first": rows[0], "rows": rows}
    if later:
        out["median_after_first"] = {
            key: statistics.median(r[key] for r in later)
            for key in ("dcp_seconds", "dcp_mb", "ours_seconds", "ours_mb_written")}
        m = out["median_after_first"]
        out["speedup"] = m["dcp_seconds"] / m["ours_seconds"]
        out["bytes_ratio"] = m["ours_mb_written"] / m["dcp_mb"]
    return out


def main() -> None:
    warnings.filterwarnings("ignore", message="torch.distributed is disabled")  # one process: intended
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    add_smoke_flag(parser)
    args = parser.parse_args()
    steps = 3 if args.smoke else args.steps
    results: dict[str, Any] = {"machine": describe(summary()), "smoke": args.smoke,
                               "model": "an MLP (smoke)" if args.smoke else "SmolLM2-135M-Instruct, Hamlet"}
    for regime in ("lora", "full"):
        results[regime] = run(regime, args.smoke, steps)
        r = results[regime]
        if "median_after_first" in r:
            m = r["median_after_first"]
            print(f"{regime}: DCP {m['dcp_seconds']:.2f} s / {m['dcp_mb']:.1f} MB per checkpoint; incremental "
                  f"{m['ours_seconds']:.2f} s / {m['ours_mb_written']:.1f} MB ({r['speedup']:.1f}x faster, "
                  f"{100 * r['bytes_ratio']:.1f} % of the bytes); exact: {r['exact_resume_state']}", flush=True)
    write_results(args, "checkpoint.json", results)


if __name__ == "__main__":
    main()
