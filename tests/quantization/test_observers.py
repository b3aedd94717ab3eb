import pytest
import torch

import deepseek
from deepseek.quantization.observers import fake_quant_values, make_observer, qparams_from_range
from deepseek.quantization.spec import OBSERVERS, QuantSpec


def sqnr(ref, out):
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean()))


@pytest.mark.parametrize("observer", OBSERVERS)
@pytest.mark.parametrize("symmetric", [True, False])
def test_every_observer_quantizes_well_at_8_bits(observer, symmetric):
    torch.manual_seed(0)
    spec = QuantSpec(8, symmetric=symmetric, observer=observer)
    obs = make_observer(spec)
    batches = [torch.randn(64, 32) * 2 + (0 if symmetric else 1) for _ in range(4)]
    for b in batches:
        obs(b)
    scale, zero = obs.qparams()
    assert scale.dim() == 0 and scale > 0
    assert spec.qmin <= int(zero) <= spec.qmax
    if symmetric:
        assert int(zero) == 0
    x = torch.cat(batches)
    assert sqnr(x, fake_quant_values(x, scale, zero, spec)) > 30  # 8-bit on Gaussian data: ~35-40 dB


def test_outlier_robust_observers_clip_the_tail():
    torch.manual_seed(0)
    x = torch.randn(100_000)
    x[0] = 1000.0  # one outlier
    ranges = {}
    for name in ("minmax", "percentile", "mse", "histogram"):
        obs = make_observer(QuantSpec(8, symmetric=True, observer=name))
        obs(x)
        scale, _ = obs.qparams()
        ranges[name] = float(scale) * 127.5
    assert ranges["minmax"] >= 999
    for name in ("percentile", "histogram"):
        assert ranges[name] < 100, (name, ranges[name])  # the outlier no longer sets the range
    # mse picks the range with the least squared error over all values (outlier included)
    errors = {}
    for name in ("minmax", "mse"):
        obs = make_observer(QuantSpec(8, observer=name))
        obs(x)
        errors[name] = float((fake_quant_values(x, *obs.qparams(), QuantSpec(8)) - x).pow(2).mean())
    assert errors["mse"] <= errors["minmax"]
    # and clipping really lowers the error on the bulk of the data
    bulk = x[1:]
    mm = make_observer(QuantSpec(8, observer="minmax"))
    mm(x)
    pc = make_observer(QuantSpec(8, observer="percentile"))
    pc(x)
    spec = QuantSpec(8)
    assert sqnr(bulk, fake_quant_values(bulk, *pc.qparams(), spec)) > sqnr(bulk, fake_quant_values(bulk, *mm.qparams(), spec)) + 10


def test_moving_average_follows_slowly():
    obs = make_observer(QuantSpec(8, observer="moving_average"))
    obs(torch.tensor([-1.0, 1.0]))
    obs(torch.tensor([-100.0, 100.0]))
    assert 1.0 < float(obs.max_val) < 3.0  # 1 + 0.01 * 99


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_ranges_follow_the_axis(axis):
    w = torch.ones(4, 6, 3)
    scales = torch.arange(1, w.shape[axis] + 1, dtype=torch.float32)
    w = w * scales.reshape([-1 if d == axis else 1 for d in range(3)])
    obs = make_observer(QuantSpec(8, per_channel=True, axis=axis))
    obs(w)
    scale, zero = obs.qparams()
    assert scale.shape == (w.shape[axis],)
    torch.testing.assert_close(scale, scales / 127.5)
    assert (zero == 0).all()


def test_asymmetric_grid_is_unsigned_and_covers_zero():
    spec = QuantSpec(8, symmetric=False)
    assert (spec.qmin, spec.qmax) == (0, 255)
    scale, zero = qparams_from_range(torch.tensor(0.5), torch.tensor(2.0), spec)
    assert int(zero) == 0 and float(scale) == pytest.approx(2.0 / 255)  # range widened to include 0
    scale, zero = qparams_from_range(torch.tensor(-1.0), torch.tensor(3.0), spec)
    assert int(zero) == round(1.0 / (4.0 / 255))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_grid_sizes(bits):
    s = QuantSpec(bits)
    assert s.qmax - s.qmin + 1 == 2**bits
    assert QuantSpec(bits, narrow_range=True).qmin == -(2 ** (bits - 1)) + 1


@pytest.mark.parametrize("kwargs, word", [
    ({"bits": 1}, "bits"), ({"bits": 9}, "bits"), ({"bits": 8.0}, "bits"), ({"observer": "max"}, "observer"),
    ({"percentile": 30}, "percentile"), ({"observer": "histogram", "per_channel": True}, "observer"),
])
def test_bad_specs_are_refused(kwargs, word):
    with pytest.raises(deepseek.InvalidArgumentError, match=word):
        QuantSpec(**kwargs)


def test_unobserved_qparams_raise():
    with pytest.raises(RuntimeError, match="calibration"):
        make_observer(QuantSpec()).qparams()


def test_histogram_ignores_exact_zeros_and_falls_back_to_range_on_few_values():
    from deepseek.quantization.observers import make_observer
    from deepseek.quantization.spec import QuantSpec

    relu = torch.relu(torch.randn(200_000, generator=torch.Generator().manual_seed(0)))
    obs = make_observer(QuantSpec(8, symmetric=False, observer="histogram"))
    obs(relu)
    scale, zero = obs.qparams()
    top = float((255 - zero) * scale)
    # half the values are exact zeros: they must not drag the threshold down to ~2 sigma
    assert 3.0 < top <= float(relu.max()) + 1e-4
    few = make_observer(QuantSpec(8, symmetric=False, observer="histogram"))
    few(torch.linspace(-1, 3, 100))
    s, z = few.qparams()
    assert float((255 - z) * s) == pytest.approx(3.0, rel=1e-2)  # min/max range, no KL clipping
