"""DynamicAttention against a direct float64 implementation of the same maths, and its masks, caches and gate."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.nn import DynamicAttention, KVCache, build_attention_mask


def _reference(att: DynamicAttention, x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Softmax attention written out: explicit rotary angles, repeated key/value heads, masked scores."""
    m = copy.deepcopy(att).double()
    x = x.double()
    b, t, _ = x.shape
    h, hk, d = m.heads, m.num_kv_heads, m.head_dim
    q = m.q_proj(x).view(b, t, h, d).transpose(1, 2)
    k = m.k_proj(x).view(b, t, hk, d).transpose(1, 2)
    v = m.v_proj(x).view(b, t, hk, d).transpose(1, 2)
    pos = torch.arange(t, dtype=torch.float64)
    # the frequencies rounded to float32, as Llama (and so its checkpoints) define them
    inv_freq = (1.0 / theta ** (torch.arange(0, d, 2).float() / d)).double()
    angle = pos[:, None] * inv_freq[None]  # (t, d/2)
    cos, sin = angle.cos(), angle.sin()

    def rotate(z):  # pair i with i + d/2
        a, c = z[..., : d // 2], z[..., d // 2:]
        return torch.cat([a * cos - c * sin, c * cos + a * sin], -1)

    q, k = rotate(q), rotate(k)
    k, v = k.repeat_interleave(h // hk, 1), v.repeat_interleave(h // hk, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2)
    if m.gate_proj is not None:
        out = out * torch.sigmoid(m.gate_proj(x)).view(b, t, h, -1)
    return m.o_proj(out.reshape(b, t, h * d))


@pytest.mark.parametrize("gate", [None, "headwise", "elementwise"])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_matches_the_maths_written_out(gate, kv_heads):
    torch.manual_seed(0)
    att = DynamicAttention(32, 4, num_kv_heads=kv_heads, gate=gate).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    torch.testing.assert_close(att(x), _reference(att, x), rtol=0, atol=1e-12)


def test_causal_the_gate_too():
    torch.manual_seed(0)
    att = DynamicAttention(32, 4, gate="elementwise").double()
    x = torch.randn(1, 9, 32, dtype=torch.float64)
    later = x.clone()
    later[:, 5:] += torch.randn(1, 4, 32, dtype=torch.float64)
    torch.testing.assert_close(att(x)[:, :5], att(later)[:, :5], rtol=0, atol=1e-13)
    assert not torch.allclose(att(x)[:, 5:], att(later)[:, 5:])


def test_generating_with_the_cache_equals_the_full_forward():
    torch.manual_seed(0)
    att = DynamicAttention(32, 4, num_kv_heads=2, gate="headwise").double()
    x = torch.randn(2, 10, 32, dtype=torch.float64)
    cache = KVCache()
    steps = [att(x[:, :4], cache=cache)] + [att(x[:, i:i + 1], cache=cache) for i in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, 1), att(x), rtol=0, atol=1e-12)
    assert cache.get_seq_length() == 10 and cache.memory_bytes() == 2 * 2 * 2 * 10 * 8 * 8  # k+v, b, kv heads, t, d


def test_a_hugging_face_cache_works_the_same():
    from transformers import DynamicCache

    torch.manual_seed(0)
    att = DynamicAttention(32, 4, num_kv_heads=2).double()
    x = torch.randn(1, 6, 32, dtype=torch.float64)
    ours, theirs = KVCache(), DynamicCache()
    for i in range(6):
        torch.testing.assert_close(att(x[:, i:i + 1], cache=ours), att(x[:, i:i + 1], cache=theirs), rtol=0, atol=0)


def test_left_padding_gives_the_unpadded_outputs_and_no_nan():
    torch.manual_seed(0)
    att = DynamicAttention(32, 4, gate="headwise").double()
    x = torch.randn(1, 5, 32, dtype=torch.float64)
    padded = torch.cat([torch.randn(1, 3, 32, dtype=torch.float64), x], 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]])
    # positions count from the first real token, as generate() passes them
    position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
    out = att(padded, attention_mask=mask, position_ids=position_ids)
    assert torch.isfinite(out).all()  # the padding queries attend to something, not to nothing
    torch.testing.assert_close(out[:, 3:], att(x), rtol=0, atol=1e-12)


def test_sliding_window_forgets_outside_it_except_the_sinks():
    torch.manual_seed(0)
    x = torch.randn(1, 12, 32, dtype=torch.float64)
    moved = x.clone()
    moved[:, 0] += 1.0
    for sinks, kept in ((0, True), (1, False)):
        att = DynamicAttention(32, 4, window=4, sinks=sinks).double()
        a, b = att(x), att(moved)
        assert torch.allclose(a[:, 4:], b[:, 4:], rtol=0, atol=1e-13) == kept  # position 0 is out of every window
        assert not torch.allclose(a[:, :4], b[:, :4])
    mask = build_attention_mask(6, 6, 0, window=2, sinks=1)[0, 0]
    assert mask.int().tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                                   [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], [1, 0, 0, 0, 1, 1]]


def test_gradients_reach_the_gate_and_it_is_per_head():
    torch.manual_seed(0)
    att = DynamicAttention(32, 4, gate="headwise")
    out, gate = att(torch.randn(2, 5, 32), return_gate=True)
    assert gate.shape == (2, 5, 4, 1) and ((gate > 0) & (gate < 1)).all()
    out.pow(2).mean().backward()
    assert att.gate_proj.weight.grad is not None and att.gate_proj.weight.grad.abs().sum() > 0
    assert DynamicAttention(32, 4, gate="elementwise")(torch.randn(1, 3, 32), return_gate=True)[1].shape == (1, 3, 4, 8)
    assert DynamicAttention(32, 4, gate=None).gate_proj is None


@pytest.mark.parametrize(("kwargs", "field"), [({"dim": 30, "heads": 4}, "dim"),
                                               ({"dim": 32, "heads": 4, "num_kv_heads": 3}, "num_kv_heads"),
                                               ({"dim": 32, "heads": 4, "gate": "softmax"}, "gate"),
                                               ({"dim": 32, "heads": 4, "window": 0}, "window"),
                                               ({"dim": 32, "heads": 0}, "heads")])
def test_bad_configurations_name_the_field(kwargs, field):
    with pytest.raises(InvalidArgumentError, match=f"^{field}:"):
        DynamicAttention(**kwargs)
    with pytest.raises(InvalidArgumentError, match=r"^x:"):
        DynamicAttention(32, 4)(torch.randn(2, 16))
