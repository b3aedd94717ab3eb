"""MoELayer: the grouped dispatch equals every-expert-on-every-token, runs each expert only on its tokens, and its
balancing (auxiliary loss, z-loss, DeepSeek-V3's bias) does what the papers say."""

from __future__ import annotations

import math

import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.nn import MoELayer


@pytest.mark.parametrize("router", ["softmax", "sigmoid"])
@pytest.mark.parametrize("shared", [0, 1])
def test_grouped_dispatch_equals_the_dense_form(router, shared):
    torch.manual_seed(0)
    moe = MoELayer(16, num_experts=6, top_k=2, expert_dim=24, router=router, n_shared_experts=shared).double().eval()
    x = torch.randn(3, 11, 16, dtype=torch.float64)
    torch.testing.assert_close(moe(x), moe.forward_dense(x), rtol=0, atol=1e-12)


def test_each_expert_runs_only_on_the_tokens_routed_to_it():
    torch.manual_seed(0)
    moe = MoELayer(16, num_experts=8, top_k=2, expert_dim=32).eval()
    rows = []
    for expert in moe.experts:
        expert.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    x = torch.randn(64, 16)
    moe(x)
    assert sum(rows) == 64 * 2  # top-2: two expert rows per token, not 8
    index, _, _ = moe.route(x)
    assert moe.tokens_per_expert.tolist() == torch.bincount(index.reshape(-1), minlength=8).tolist()
    assert sum(moe.load()["tokens_per_expert"]) == 128


def test_capacity_drops_the_overflow_in_token_order():
    torch.manual_seed(0)
    moe = MoELayer(8, num_experts=4, top_k=1, expert_dim=8, capacity_factor=1.0).double().eval()
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 10.0  # every token prefers expert 0
    x = torch.rand(8, 8, dtype=torch.float64) + 0.1  # positive: expert 0 wins for all
    out = moe(x)
    capacity = math.ceil(1.0 * 8 * 1 / 4)
    assert moe.load()["tokens_per_expert"] == [capacity, 0, 0, 0] and moe.load()["dropped_tokens"] == 8 - capacity
    assert moe.load()["dead_experts"] == [1, 2, 3]
    torch.testing.assert_close(out[:capacity], moe.experts[0](x[:capacity]), rtol=0, atol=1e-12)  # weight 1 each
    assert (out[capacity:] == 0).all()  # dropped: the caller's residual carries them
    drop_less = MoELayer(8, num_experts=4, top_k=1, expert_dim=8).double().eval()
    drop_less.load_state_dict(moe.state_dict())
    assert drop_less(x).abs().sum(-1).gt(0).all() and drop_less.load()["dropped_tokens"] == 0


def test_losses_have_their_closed_form_at_a_uniform_router():
    moe = MoELayer(8, num_experts=4, top_k=2, expert_dim=8, aux_loss_coef=0.01, z_loss_coef=0.001)
    with torch.no_grad():
        moe.router.weight.zero_()  # every probability 1/4: aux = E * sum_e f_e / E = 1, z = log(4)^2
    moe(torch.randn(10, 8))
    assert float(moe.losses.aux_loss.detach()) == pytest.approx(0.01)
    assert float(moe.losses.z_loss.detach()) == pytest.approx(0.001 * math.log(4) ** 2)
    torch.manual_seed(0)
    moe = MoELayer(8, num_experts=4, top_k=2, expert_dim=8)
    out = moe(torch.randn(10, 8))
    (out.pow(2).mean() + moe.losses.total).backward()
    assert moe.router.weight.grad.abs().sum() > 0  # through the routing weights and the losses


def test_bias_balancing_spreads_a_skewed_router_without_a_loss():
    torch.manual_seed(0)
    moe = MoELayer(8, num_experts=4, top_k=1, expert_dim=8, router="sigmoid", bias_update_rate=0.01).train()
    with torch.no_grad():
        moe.router.weight.normal_(0, 0.1)
        moe.router.weight[0] += 0.5  # expert 0 is everyone's favourite
    x = torch.randn(256, 8).abs()
    moe(x)
    first = moe.load()["tokens_per_expert"]
    for _ in range(200):
        moe(x)
    last = moe.load()["tokens_per_expert"]
    assert first[0] > 128 and max(last) - min(last) < max(first) - min(first)
    assert moe.expert_bias[0] < 0 and moe.losses.aux_loss.item() == 0.0  # aux-loss-free: coefficient 0
    assert "expert_bias" in moe.state_dict()  # the learned balance is saved with the model


@pytest.mark.parametrize(("kwargs", "field"), [({"top_k": 9}, "top_k"), ({"router": "hash"}, "router"),
                                               ({"capacity_factor": 0}, "capacity_factor"),
                                               ({"num_experts": 0}, "num_experts")])
def test_bad_configurations_name_the_field(kwargs, field):
    with pytest.raises(InvalidArgumentError, match=f"^{field}:"):
        MoELayer(16, **kwargs)
