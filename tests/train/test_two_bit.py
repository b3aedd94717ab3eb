"""The 2-bit gradient quantizer and its DDP hook's error feedback, checked against the math (float64 bounds)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from deepseek.train.comm_hooks import dequantize_2bit, quantize_2bit, register_compression


def test_codes_pack_four_to_a_byte_and_land_on_the_two_neighbouring_levels():
    values = torch.randn(1001, generator=torch.Generator().manual_seed(0))
    packed, scale = quantize_2bit(values, torch.Generator().manual_seed(1))
    assert packed.dtype == torch.uint8 and packed.numel() == 251 and float(scale) == float(values.abs().max())
    decoded = dequantize_2bit(packed, scale, values.numel())
    levels = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]) * scale
    assert torch.isclose(decoded[:, None], levels[None, :], rtol=0, atol=1e-6 * float(scale)).any(1).all()
    # stochastic rounding picks one of the two levels around each value: never more than one spacing away
    assert float((decoded - values).abs().max()) <= 2 / 3 * float(scale) * (1 + 1e-6)


def test_the_rounding_is_unbiased():
    values = torch.randn(64, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(2)
    n = 4000
    mean = torch.zeros(64, dtype=torch.float64)
    for _ in range(n):
        packed, scale = quantize_2bit(values, generator)
        mean += dequantize_2bit(packed, scale, 64).double()
    mean /= n
    # each draw is off by at most one spacing (2s/3): its std is <= s/3, the mean's <= s/(3 sqrt(n)); 6 sigma
    bound = 6 * float(values.abs().max()) / (3 * n ** 0.5)
    assert float((mean - values.double()).abs().max()) < bound


def test_error_feedback_keeps_the_sum_of_what_was_sent_within_one_spacing(tmp_path):
    """One process through real DDP and the hook: after T steps the gradients applied add up to the true ones
    but for the last residual r_T, at most one spacing (2/3 of that step's scale s_T) per element. s_T <= max|g| +
    2/3 s_(T-1), so s_T <= 3 max|g| over the steps and |sum sent - sum true| <= 2 max|g|."""
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = torch.nn.Linear(32, 8)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        stats = register_compression(ddp, "2bit", seed=0)
        sent = torch.zeros(8 * 32 + 8, dtype=torch.float64)
        true = torch.zeros_like(sent)
        x = torch.randn(50, 16, 32, generator=torch.Generator().manual_seed(3))
        largest = 0.0
        for step in range(50):
            ddp.zero_grad()
            out = ddp(x[step])
            out.pow(2).mean().backward()
            gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
                model(x[step]).pow(2).mean(), [model.weight, model.bias])]).double()
            true += gradient
            largest = max(largest, float(gradient.abs().max()))
            sent += torch.cat([model.weight.grad.reshape(-1), model.bias.grad.reshape(-1)]).double()
        assert stats.calls == 50 and stats.bytes_allreduced == 50 * ((8 * 32 + 8 + 3) // 4 + 4)
        assert float((sent - true).abs().max()) <= 2 * largest * (1 + 1e-5)
        # and the compressed gradients are not the true ones (the hook ran)
        assert not torch.allclose(sent, true, atol=1e-6)
    finally:
        dist.destroy_process_group()
