"""Causal language model metrics: perplexity on a real text and greedy generation speed."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .._core.checks import check_int
from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class Perplexity:
    """exp(mean negative log-likelihood) over ``tokens`` predicted tokens in ``windows`` windows."""

    value: float
    tokens: int
    windows: int


def perplexity(model: Any, tokenizer: Any, text: str, *, window: int = 512, max_windows: int | None = None,
               progress: bool = False) -> Perplexity:
    """Perplexity of ``model`` on ``text``, cut into non-overlapping windows of ``window`` tokens."""
    import contextlib

    import torch

    from .._core.progress import progress as progress_bar

    if not isinstance(text, str) or not text.strip():
        raise invalid("text", type(text).__name__, "a non-empty string")
    check_int(window, "window", minimum=2, expected="an integer of at least 2")
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    count = ids.numel() // window
    if max_windows is not None:
        count = min(count, max_windows)
    if count < 1:
        raise invalid("text", f"{ids.numel()} tokens", f"at least one window of {window} tokens")
    nll, predicted = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode(), (progress_bar(transient=True) if progress else contextlib.nullcontext()) as bar:
        task = bar.add_task("perplexity", total=count) if bar is not None else None
        for i in range(count):
            if bar is not None:
                bar.advance(task)
            chunk = ids[i * window:(i + 1) * window].unsqueeze(0).to(device)
            logits = model(chunk).logits[0, :-1].float()
            nll += torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="sum").item()
            predicted += window - 1
    return Perplexity(math.exp(nll / predicted), predicted, count)


def generation_speed(model: Any, tokenizer: Any, prompt: str = "To be, or not to be", *, new_tokens: int = 32,
                     runs: int = 5, warmup: int = 1) -> dict[str, float]:
    """Greedy decoding with the KV cache: median milliseconds per call and tokens per second."""
    import torch

    from .._core.timing import measure

    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(next(model.parameters()).device)

    def generate() -> Any:
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                  min_new_tokens=new_tokens, do_sample=False,
                                  pad_token_id=model.config.eos_token_id)

    stats = measure(generate, warmup=warmup, runs=runs)
    return {"median_ms": stats.median_ms, "tokens_per_s": new_tokens * 1000.0 / stats.median_ms}
