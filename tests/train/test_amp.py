import pytest
import torch

import deepseek
from deepseek.train.amp import GradScaler, autocast, choose_dtype


def test_dtype_follows_the_hardware():
    assert choose_dtype("cpu", features={"avx512_bf16": True}) == torch.bfloat16
    assert choose_dtype("cpu", features={"amx_bf16": True}) == torch.bfloat16
    assert choose_dtype("cpu", features={"avx2": True}) == torch.float32  # no bf16 arithmetic: autocast stays off
    assert choose_dtype("cuda", cuda_capability=(8, 0)) == torch.bfloat16  # Ampere+
    assert choose_dtype("cuda", cuda_capability=(7, 5)) == torch.float16  # Turing


def test_autocast_runs_matmuls_in_the_chosen_dtype():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with autocast("cpu", dtype="bf16") as dtype:
        y = layer(x)
        loss = torch.nn.functional.cross_entropy(y, torch.tensor([0, 1]))
    assert dtype == torch.bfloat16 and y.dtype == torch.bfloat16 and loss.dtype == torch.float32
    with autocast("cpu", dtype="fp32") as dtype:
        assert dtype == torch.float32 and layer(x).dtype == torch.float32


def test_bf16_scaler_is_a_pass_through():
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = GradScaler("cpu", dtype="bf16")
    loss = model(torch.randn(3, 4)).pow(2).mean()
    assert not scaler.enabled and scaler.scale(loss) is loss and scaler.get_scale() == 1.0
    scaler.scale(loss).backward()
    before = model.weight.detach().clone()
    assert scaler.step(opt) and not torch.equal(before, model.weight)


def test_fp16_scaler_unscales_before_clipping_and_skips_overflowing_steps():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    reference = torch.nn.Linear(4, 1)
    reference.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = GradScaler("cpu", dtype="fp16", init_scale=1024.0)
    x = torch.randn(3, 4)
    scaled = scaler.scale(model(x).pow(2).mean())
    assert float(scaled.detach()) == pytest.approx(1024.0 * float(reference(x).pow(2).mean()), rel=1e-5)
    scaled.backward()
    reference(x).pow(2).mean().backward()
    true_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), float("inf"))
    norm = scaler.clip_grad_norm_(model.parameters(), 1e9, opt)  # unscaled first: the true norm, not 1024x
    assert float(norm) == pytest.approx(float(true_norm), rel=1e-5)
    assert scaler.step(opt)
    scaler.update()
    opt.zero_grad()
    model.weight.grad = torch.full_like(model.weight, float("inf"))
    model.bias.grad = torch.zeros_like(model.bias)
    before = model.weight.detach().clone()
    assert not scaler.step(opt)  # overflow: the step is skipped ...
    scaler.update()
    assert torch.equal(before, model.weight) and scaler.get_scale() == 512.0  # ... and the scale backs off
    state = scaler.state_dict()
    fresh = GradScaler("cpu", dtype="fp16")
    fresh.load_state_dict(state)
    assert fresh.get_scale() == 512.0


def test_bad_arguments_are_refused():
    with pytest.raises(deepseek.InvalidArgumentError, match="dtype"), autocast("cpu", dtype="int8"):
        pass
    with pytest.raises(deepseek.InvalidArgumentError, match="device"):
        GradScaler("tpu")
    with pytest.raises(deepseek.InvalidArgumentError, match="init_scale"):
        GradScaler("cpu", dtype="fp16", init_scale=0)
    with pytest.raises(deepseek.InvalidArgumentError, match="max_norm"):
        GradScaler("cpu", dtype="fp16").clip_grad_norm_([], 0, torch.optim.SGD([torch.zeros(1, requires_grad=True)]))
