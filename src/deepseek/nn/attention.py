"""DynamicAttention: multi-head attention on ``F.scaled_dot_product_attention`` with an optional query-dependent
sigmoid gate on its output (the "G1" gate of Qiu et al. 2025, "Gated Attention for Large Language Models"),
grouped-query attention, rotary positions, causal / padding / sliding-window masks and a KV cache.

Why the gate sits where it does. The articles sketch a gate computed from the *sequence mean* and multiplied into
the *attention matrix*. As written that is wrong twice: in a causal model the mean over the sequence contains the
tokens after the current one (the gate leaks the future into every position), and scaling rows of the attention
matrix after the softmax breaks its normalisation and rules out the fused SDPA / FlashAttention kernels, which
never materialise that matrix. Qiu et al. compared 30 gate variants at scale; the one that helps (lower perplexity,
stabler training, no attention sink) is ``Y' = Y * sigmoid(X W_g)``: each token's gate comes from that token's own
(normalised) hidden state ``X`` — so it is causal — and multiplies the SDPA output ``Y`` of each head, before the
output projection. ``gate="headwise"`` learns one gate per head and token (``dim x heads`` weights),
``gate="elementwise"`` one per head dimension (``dim x heads*head_dim``), ``gate=None`` is plain attention.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .._core.checks import check_choice, check_int, check_number
from .._core.errors import invalid
from .rope import RotaryEmbedding, apply_rotary

GATES = (None, "headwise", "elementwise")


class KVCache:
    """Keys and values of every layer so far, grown one step at a time.

    ``update(key, value, layer_idx)`` appends and returns the layer's whole keys and values: the protocol Hugging
    Face's ``Cache`` classes share, so a ``DynamicCache`` or ``StaticCache`` can be passed instead."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int,
               cache_kwargs: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if layer_idx == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        elif layer_idx < len(self.keys):
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value], dim=-2)
        else:
            raise invalid("layer_idx", layer_idx, f"<= {len(self.keys)} (layers are cached in order)")
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.keys[layer_idx].shape[-2]) if layer_idx < len(self.keys) else 0

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def build_attention_mask(q_len: int, k_len: int, past: int | torch.Tensor, *, causal: bool = True,
                         padding_mask: torch.Tensor | None = None, window: int | None = None, sinks: int = 0,
                         device: torch.device | None = None,
                         key_positions: torch.Tensor | None = None) -> torch.Tensor | None:
    """A boolean mask ``(batch or 1, 1, q_len, k_len)`` (True: may attend) for queries at positions
    ``past .. past+q_len-1`` over keys at ``0 .. k_len-1``; None when plain causal attention needs none.

    ``padding_mask`` ``(batch, <= k_len)``: 1 for real tokens, 0 for padding (positions past its end count as real:
    a static cache's unfilled slots are later than every query, so causality already hides them). ``window``: a
    query sees only the last ``window`` positions up to itself, plus the first ``sinks`` positions (StreamingLLM's
    attention sinks). A query row left with no key (a padding query under left padding) attends to every key instead:
    its output is never used, but an all-masked row would be NaN and poison the padded positions' later layers.
    ``past`` may be a 0-d tensor (a static cache's length): the mask is then built without reading it back.
    ``key_positions`` ``(k_len,)``: the positions of the keys when they are not ``0 .. k_len-1`` (a cache that evicted
    some, :class:`~deepseek.nn.kv_cache.SinkKVCache`)."""
    if key_positions is None and padding_mask is None and window is None and \
            (not causal or (q_len == k_len and isinstance(past, int) and past == 0)):
        return None
    qpos = (torch.arange(q_len, device=device) + past)[:, None]
    if key_positions is not None:
        k_len = int(key_positions.numel())
        kpos = key_positions.to(device)[None, :]
    else:
        kpos = torch.arange(k_len, device=device)[None, :]
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device)
    if causal:
        allowed &= kpos <= qpos
    if window is not None:
        allowed &= (qpos - kpos < window) | (kpos < sinks)
    mask = allowed[None, None]
    if padding_mask is not None:
        pad = padding_mask.to(device=device, dtype=torch.bool)
        span = k_len if key_positions is None else int(key_positions.max()) + 1
        if pad.shape[-1] < span:
            pad = F.pad(pad, (0, span - pad.shape[-1]), value=True)
        pad = pad[:, :k_len] if key_positions is None else pad[:, kpos[0]]
        mask = mask & pad[:, None, None, :]
    return mask | ~mask.any(-1, keepdim=True)


class DynamicAttention(torch.nn.Module):
    """Multi-head self-attention: ``dim`` model width, ``heads`` query heads, ``num_kv_heads`` key/value heads
    (grouped-query attention; default ``heads``), ``gate`` None / ``"headwise"`` / ``"elementwise"`` (see the module
    docstring), rotary positions with base ``rope_theta`` (None: no positions), ``window`` / ``sinks`` for
    sliding-window attention, ``causal`` for decoders.

    ``forward(x, attention_mask=None, position_ids=None, cache=None, layer_idx=0)``: ``x`` ``(batch, seq, dim)``;
    ``attention_mask`` a ``(batch, seq_k)`` padding mask (1 real, 0 pad) or a 4-D boolean/additive mask used as
    given; ``cache`` a :class:`KVCache` (or a Hugging Face ``Cache``), updated in place; ``position_embeddings``
    the rotary ``(cos, sin)`` when a model computes them once for all its layers."""

    def __init__(self, dim: int, heads: int, *, num_kv_heads: int | None = None, head_dim: int | None = None,
                 gate: str | None = "headwise", rope_theta: float | None = 10000.0, bias: bool = False,
                 dropout: float = 0.0, causal: bool = True, window: int | None = None, sinks: int = 0) -> None:
        super().__init__()
        num_kv_heads = heads if num_kv_heads is None else num_kv_heads
        for name, value in (("dim", dim), ("heads", heads), ("num_kv_heads", num_kv_heads)):
            check_int(value, name, minimum=1, expected="a positive integer")
        if head_dim is None:
            if dim % heads:
                raise invalid("dim", dim, f"a multiple of heads ({heads}), or an explicit head_dim")
            head_dim = dim // heads
        if heads % num_kv_heads:
            raise invalid("num_kv_heads", num_kv_heads, f"a divisor of heads ({heads}): each key/value head serves "
                                                        "a whole group of query heads")
        check_choice(gate, "gate", GATES, expected=f"one of {GATES}")
        check_number(dropout, "dropout", minimum=0, below=1, expected="a probability in [0, 1)")
        check_int(window, "window", minimum=1, optional=True,
                  expected="None or a positive number of positions")
        check_int(sinks, "sinks", minimum=0, expected="a count >= 0")
        self.dim, self.heads, self.num_kv_heads, self.head_dim = dim, heads, num_kv_heads, head_dim
        self.gate, self.dropout, self.causal, self.window, self.sinks = gate, dropout, causal, window, sinks
        self.q_proj = torch.nn.Linear(dim, heads * head_dim, bias=bias)
        self.k_proj = torch.nn.Linear(dim, num_kv_heads * head_dim, bias=bias)
        self.v_proj = torch.nn.Linear(dim, num_kv_heads * head_dim, bias=bias)
        self.o_proj = torch.nn.Linear(heads * head_dim, dim, bias=bias)
        self.gate_proj = (torch.nn.Linear(dim, heads * (head_dim if gate == "elementwise" else 1), bias=False)
                          if gate is not None else None)
        self.rotary = RotaryEmbedding(head_dim, rope_theta) if rope_theta is not None else None

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: Any = None, layer_idx: int = 0,
                return_gate: bool = False, position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise invalid("x", list(x.shape), f"(batch, seq, {self.dim})")
        batch, seq, _ = x.shape
        q = self.q_proj(x).view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        past = cache.get_seq_length(layer_idx) if cache is not None else 0  # a tensor for a static cache
        positions = torch.arange(seq, device=x.device) + past
        if position_ids is None:
            position_ids = positions[None].expand(batch, seq)
        if self.rotary is not None:  # ``position_embeddings``: (cos, sin) computed once for every layer
            cos, sin = position_embeddings if position_embeddings is not None else self.rotary(position_ids, q.dtype)
            q, k = apply_rotary(q, k, cos, sin)
        key_positions = cache.key_positions(layer_idx, seq) if hasattr(cache, "key_positions") else None
        if cache is not None:
            k, v = cache.update(k, v, layer_idx, {"cache_position": positions})
        if self._sparse_eligible(attention_mask, seq, k.shape[-2], past, key_positions, x):
            from .sparse import sparse_attention

            # FlexAttention: blocks outside the window are never computed
            out = sparse_attention(q, k, v, window=self.window, sinks=self.sinks, causal=self.causal, backend="flex")
        else:
            mask = self._mask(attention_mask, seq, k.shape[-2], past, x.device, key_positions)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                is_causal=self.causal and mask is None and seq > 1, enable_gqa=self.num_kv_heads != self.heads)
        out = out.transpose(1, 2)  # (batch, seq, heads, head_dim)
        gate = None
        if self.gate_proj is not None:
            gate = torch.sigmoid(self.gate_proj(x)).view(batch, seq, self.heads, -1)
            out = out * gate
        out = self.o_proj(out.reshape(batch, seq, self.heads * self.head_dim))
        return (out, gate) if return_gate else out

    def _sparse_eligible(self, attention_mask: torch.Tensor | None, q_len: int, k_len: int, past: Any,
                         key_positions: torch.Tensor | None, x: torch.Tensor) -> bool:
        """A long windowed pass over its own keys, unpadded, in inference on a CPU: FlexAttention skips the blocks
        outside the window (measured 3.9x dense SDPA at 8k tokens, 8.7x at 16k; docs/notes/nn.md)."""
        from .sparse import FLEX_MIN_TOKENS

        return (self.window is not None and self.window < q_len and q_len >= FLEX_MIN_TOKENS and k_len == q_len
                and isinstance(past, int) and past == 0 and key_positions is None and x.device.type == "cpu"
                and not torch.is_grad_enabled() and (attention_mask is None or (attention_mask.dim() == 2
                                                                                and bool(attention_mask.all()))))

    def _mask(self, attention_mask: torch.Tensor | None, q_len: int, k_len: int, past: int | torch.Tensor,
              device: torch.device, key_positions: torch.Tensor | None = None) -> torch.Tensor | None:
        if attention_mask is not None and attention_mask.dim() == 4:
            return attention_mask  # a full mask built by the caller
        if attention_mask is not None and attention_mask.dim() != 2:
            raise invalid("attention_mask", list(attention_mask.shape), "(batch, seq_k) padding or a 4-D mask")
        # nothing padded: the fused causal path
        padding = None if attention_mask is None or bool(attention_mask.all()) else attention_mask
        return build_attention_mask(q_len, k_len, past, causal=self.causal, padding_mask=padding,
                                    window=self.window, sinks=self.sinks, device=device, key_positions=key_positions)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, heads={self.heads}, num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}, "
                f"gate={self.gate}, window={self.window}, sinks={self.sinks}")
