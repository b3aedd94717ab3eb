"""Sparse attention: FlexAttention (compiled, empty blocks skipped) and SDPA with a dense mask agree, and the
patterns are the ones described."""

from __future__ import annotations

import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.nn.sparse import block_mask, dense_mask, sparse_attention

pytestmark = pytest.mark.slow  # one FlexAttention compile (~10 s)


def test_flex_and_dense_sdpa_agree_on_window_sinks_and_block_layouts():
    torch.manual_seed(0)
    q = torch.randn(1, 4, 512, 32)
    k, v = torch.randn(1, 2, 512, 32), torch.randn(1, 2, 512, 32)  # grouped-query: 2 key/value heads
    layout = torch.rand(4, 4) > 0.4
    layout |= torch.eye(4, dtype=torch.bool)  # every query block reads its own block
    for kwargs in ({"window": 96, "sinks": 4}, {"layout": layout}):
        flex = sparse_attention(q, k, v, backend="flex", **kwargs)
        sdpa = sparse_attention(q, k, v, backend="sdpa", **kwargs)
        torch.testing.assert_close(flex, sdpa, rtol=1e-4, atol=1e-5)
    sparse = block_mask(4096, 4096, window=256, sinks=4)
    assert sparse.sparsity() > 80  # % of blocks skipped at 4k tokens with a 256 window


def test_the_masks_say_what_they_mean():
    m = dense_mask(6, 6, window=2, sinks=1).int().tolist()
    assert m == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0],
                 [1, 0, 0, 0, 1, 1]]
    layout = torch.tensor([[True, False], [True, True]])
    blocks = dense_mask(4, 4, layout=layout, block_size=2, causal=False).int().tolist()
    assert blocks == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    with pytest.raises(InvalidArgumentError, match=r"^layout:"):
        sparse_attention(torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4),
                         layout=torch.ones(3, 3, dtype=torch.bool), block_size=4)
    with pytest.raises(InvalidArgumentError, match=r"^backend:"):
        sparse_attention(torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4), backend="xformers")


def test_dynamic_attention_routes_a_long_windowed_pass_to_flex_attention_with_the_same_result(monkeypatch):
    from deepseek.nn import DynamicAttention, sparse

    torch.manual_seed(0)
    att = DynamicAttention(64, 4, num_kv_heads=2, window=96, sinks=4).eval()
    x = torch.randn(1, 1100, 64)  # past FLEX_MIN_TOKENS
    calls = []
    real = sparse.sparse_attention
    monkeypatch.setattr(sparse, "sparse_attention", lambda *a, **k: calls.append(k["backend"]) or real(*a, **k))
    with torch.no_grad():
        routed = att(x)
    assert calls == ["flex"]
    dense = att(x).detach()  # with gradients on: SDPA with the dense window mask
    assert calls == ["flex"]
    torch.testing.assert_close(routed, dense, rtol=1e-4, atol=1e-5)
