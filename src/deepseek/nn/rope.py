"""Rotary position embeddings (Su et al., RoFormer), in the layout Llama checkpoints use: each head's dimensions
split in two halves rotated against each other (``rotate_half``), so Llama / SmolLM2 weights load unchanged."""

from __future__ import annotations

import torch

from .._core.errors import invalid


class RotaryEmbedding(torch.nn.Module):
    """``cos, sin = rope(position_ids, dtype)``: the rotation of every position (``(batch, seq, head_dim)``).

    The inverse frequencies are a non-persistent buffer (computed from ``head_dim`` and ``theta``, never saved),
    as in Hugging Face's Llama."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
            raise invalid("head_dim", head_dim, "an even integer >= 2 (rotary pairs)")
        if not theta > 0:
            raise invalid("rope_theta", theta, "a positive base, e.g. 10000")
        self.head_dim, self.theta = head_dim, float(theta)
        self.register_buffer("inv_freq", self.frequencies(), persistent=False)

    def frequencies(self) -> torch.Tensor:
        """``theta ** (-2i / head_dim)`` in float32 (Llama's values, whatever dtype the model is later cast to)."""
        return 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        # at least float32 whatever the model's dtype: positions of thousands lose their low bits in bfloat16
        # (the frequencies themselves are float32 values, as Llama's are, even in a float64 model)
        wide = torch.promote_types(self.inv_freq.dtype, torch.float32)
        freqs = position_ids[..., None].to(wide) * self.inv_freq.to(device=position_ids.device, dtype=wide)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate queries and keys shaped ``(batch, heads, seq, head_dim)`` by ``cos``/``sin`` of ``(batch, seq, head_dim)``."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
