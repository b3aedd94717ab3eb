import pytest
import torch

from deepseek.quantization.fake_quant import FakeQuantize, fake_quantize, lsq_fake_quantize
from deepseek.quantization.spec import QuantSpec


def test_fake_quantize_rounds_onto_the_grid():
    spec = QuantSpec(4, symmetric=True)
    x = torch.linspace(-2, 2, 101)
    out = fake_quantize(x, torch.tensor(0.25), torch.tensor(0), spec)
    assert torch.allclose(out / 0.25, torch.round(out / 0.25))
    assert float(out.min()) == -8 * 0.25 and float(out.max()) == 7 * 0.25  # clamped to [-8, 7]
    assert len(out.unique()) == 16


def test_straight_through_estimator_gradient():
    spec = QuantSpec(8, symmetric=True)
    x = torch.tensor([-200.0, -1.0, 0.3, 1.0, 200.0], requires_grad=True)
    fake_quantize(x, torch.tensor(0.1), torch.tensor(0), spec).sum().backward()
    # gradient 1 inside the representable range (|x| <= 12.7), 0 where the value was clipped
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_lsq_scale_gradient_matches_the_paper():
    spec = QuantSpec(4, symmetric=True)
    scale = torch.tensor([0.5], requires_grad=True)
    zero = torch.tensor([0.0])
    x = torch.tensor([0.3, 10.0])  # one inside the range, one clipped at qmax=7
    lsq_fake_quantize(x, scale, zero, spec).sum().backward()
    # d/ds: inside -> round(x/s) - x/s = 1 - 0.6 = 0.4 ; clipped high -> qmax = 7; times grad scale 1/sqrt(N*qmax)
    expected = (0.4 + 7) / (2 * 7) ** 0.5
    assert float(scale.grad) == pytest.approx(expected, rel=1e-4)


def test_lsq_plus_learns_the_zero_point_of_asymmetric_grids():
    fq = FakeQuantize(QuantSpec(4, symmetric=False), learnable=True)
    x = torch.rand(256) * 3 - 0.5
    fq(x)
    assert fq.scale.requires_grad and fq.zero_point.requires_grad
    fq.observe = False
    with torch.no_grad():
        fq.scale.mul_(0.5)  # a narrower range clips the tails: only clipped values move the zero point
    out = fq(x)
    (out - x).pow(2).sum().backward()
    assert fq.scale.grad is not None and fq.zero_point.grad is not None and float(fq.zero_point.grad.abs()) > 0
    sym = FakeQuantize(QuantSpec(4, symmetric=True), learnable=True)
    sym(x)
    assert not sym.zero_point.requires_grad


def test_learned_scale_reduces_error():
    torch.manual_seed(0)
    x = torch.randn(4096)
    fq = FakeQuantize(QuantSpec(3, symmetric=True), learnable=True)  # minmax init: far too wide for 3 bits
    fq(x)
    before = float((fq(x) - x).pow(2).mean().detach())
    opt = torch.optim.Adam([fq.scale], lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        (fq(x) - x).pow(2).mean().backward()
        opt.step()
    after = float((fq(x) - x).pow(2).mean().detach())
    assert after < 0.7 * before


def test_switches_and_per_channel_module():
    fq = FakeQuantize(QuantSpec(8, per_channel=True, axis=0))
    w = torch.randn(6, 3, 3, 3)
    out = fq(w)
    scale, _ = fq.qparams()
    assert scale.shape == (6,) and not torch.equal(out, w)
    fq.enabled = False
    assert torch.equal(fq(w), w)
    fq.enabled, fq.observe = True, False
    fq(w * 100)  # ranges frozen: a larger tensor does not move them
    torch.testing.assert_close(fq.qparams()[0], scale)
