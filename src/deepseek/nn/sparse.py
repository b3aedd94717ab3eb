"""Sparse attention for long sequences: sliding window with attention sinks (StreamingLLM) and block-sparse layouts,
on FlexAttention (``torch.nn.attention.flex_attention``, compiled), which skips the blocks a mask empties, or on
SDPA with a dense boolean mask (every score computed, then masked) where FlexAttention cannot run.

``sparse_attention(q, k, v, window=..., sinks=..., layout=...)`` takes ``(batch, heads, seq, head_dim)`` tensors
(keys and values may have fewer heads: grouped-query). Both backends give the same result to float rounding.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from .._core.checks import check_choice, check_int
from .._core.errors import invalid

BACKENDS = ("auto", "flex", "sdpa")
FLEX_MIN_TOKENS = 1024  # below this the compiled kernel's fixed cost is not worth it (auto picks SDPA)


@functools.cache
def _compiled_flex() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def _mask_fn(q_len: int, kv_len: int, window: int | None, sinks: int, layout: torch.Tensor | None,
             block_size: int, causal: bool) -> Any:
    offset = kv_len - q_len  # queries are the last q_len positions

    def allowed(b: Any, h: Any, qi: Any, ki: Any) -> Any:
        q_pos = qi + offset
        keep = (ki <= q_pos) if causal else (ki >= 0)
        if window is not None:
            keep = keep & ((q_pos - ki < window) | (ki < sinks))
        if layout is not None:
            keep = keep & layout[q_pos // block_size, ki // block_size]
        return keep

    return allowed


def dense_mask(q_len: int, kv_len: int, *, window: int | None = None, sinks: int = 0,
               layout: torch.Tensor | None = None, block_size: int = 128, causal: bool = True,
               device: Any = None) -> torch.Tensor:
    """The boolean ``(q_len, kv_len)`` mask (True: attend) the sparse pattern describes."""
    qi = torch.arange(q_len, device=device)[:, None]
    ki = torch.arange(kv_len, device=device)[None, :]
    lay = layout.to(device) if layout is not None else None
    return _mask_fn(q_len, kv_len, window, sinks, lay, block_size, causal)(None, None, qi, ki)


def block_mask(q_len: int, kv_len: int, *, window: int | None = None, sinks: int = 0,
               layout: torch.Tensor | None = None, block_size: int = 128, causal: bool = True,
               device: Any = "cpu") -> Any:
    """FlexAttention's ``BlockMask`` for the pattern: blocks the mask leaves empty are never computed. Building one
    costs about as much as a dense attention pass: build it once per shape and pass it to every call
    (``sparse_attention(..., mask=...)``); window patterns are cached here by shape."""
    if layout is None:
        return _window_block_mask(q_len, kv_len, window, sinks, block_size, causal, str(device))
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(_mask_fn(q_len, kv_len, window, sinks, layout.to(device), block_size, causal), B=None,
                             H=None, Q_LEN=q_len, KV_LEN=kv_len, device=device, BLOCK_SIZE=block_size, _compile=True)


@functools.lru_cache(maxsize=16)
def _window_block_mask(q_len: int, kv_len: int, window: int | None, sinks: int, block_size: int, causal: bool,
                       device: str) -> Any:
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(_mask_fn(q_len, kv_len, window, sinks, None, block_size, causal), B=None, H=None,
                             Q_LEN=q_len, KV_LEN=kv_len, device=device, BLOCK_SIZE=block_size, _compile=True)


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, window: int | None = None,
                     sinks: int = 0, layout: torch.Tensor | None = None, block_size: int = 128,
                     causal: bool = True, backend: str = "auto", mask: Any = None) -> torch.Tensor:
    """Attention restricted to a sliding ``window`` (plus the first ``sinks`` keys) and/or a block ``layout``
    (``(ceil(kv/block), ceil(kv/block))`` booleans: which query block may read which key block). ``mask``: a
    :func:`block_mask` built beforehand for these arguments (FlexAttention; reused across calls and layers)."""
    check_choice(backend, "backend", BACKENDS, expected=f"one of {BACKENDS}")
    check_int(window, "window", minimum=1, optional=True, expected="None or a positive number of positions")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise invalid("q", list(q.shape), "(batch, heads, seq, head_dim) queries, keys and values")
    q_len, kv_len = q.shape[-2], k.shape[-2]
    if layout is not None:
        blocks = -(-kv_len // block_size)
        if layout.dtype != torch.bool or tuple(layout.shape) != (blocks, blocks):
            raise invalid("layout", list(layout.shape), f"a ({blocks}, {blocks}) boolean block layout for {kv_len} keys "
                                                         f"in blocks of {block_size}")
    gqa = q.shape[1] != k.shape[1]
    use_flex = backend == "flex" or (backend == "auto" and kv_len >= FLEX_MIN_TOKENS and q.device.type == "cpu"
                                     and q.requires_grad is False)
    if use_flex:
        if mask is None:
            mask = block_mask(q_len, kv_len, window=window, sinks=sinks, layout=layout, block_size=block_size,
                              causal=causal, device=q.device)
        return _compiled_flex()(q, k, v, block_mask=mask, enable_gqa=gqa)
    mask = dense_mask(q_len, kv_len, window=window, sinks=sinks, layout=layout, block_size=block_size, causal=causal,
                      device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


__all__ = ["BACKENDS", "block_mask", "dense_mask", "sparse_attention"]
