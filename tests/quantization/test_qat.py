import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

import deepseek
from deepseek import assets
from deepseek.quantization import QATConfig
from deepseek.quantization.qat import (
    QATConv2d,
    QATLinear,
    calibrate,
    convert,
    fake_quantizers,
    fold_batchnorm,
)
from deepseek.train import accuracy, fit_classifier


def test_apply_matches_the_spec_example():
    model = torchvision.models.resnet18(weights=None)
    quant_model = QATConfig(activation_bits=8, weight_bits=8, observer_type="minmax").apply(model)
    assert quant_model is model  # in place
    assert isinstance(model.conv1, QATConv2d) and isinstance(model.fc, QATLinear)
    assert isinstance(model.bn1, torch.nn.Identity)  # folded into conv1
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert model.conv1.weight.grad is not None  # trainable through the fake quantizers


def test_bn_folding_is_exact_in_eval():
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.data.uniform_(0.5, 1.5)
    m.eval()
    x = torch.randn(2, 3, 64, 64)
    ref = m(x)
    assert fold_batchnorm(m) == 20
    torch.testing.assert_close(m(x), ref, atol=1e-4, rtol=1e-4)


def test_layer_bits_precedence_and_skip():
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    cfg = QATConfig(weight_bits=8, layer_bits={"0": 4, "re:[0-9]": 6}, skip=("3",))
    cfg.apply(m)
    assert m[0].weight_fq.spec.bits == 4  # exact name beats the regex
    assert m[2].weight_fq.spec.bits == 6
    assert type(m[3]) is torch.nn.Linear  # skipped


@pytest.mark.parametrize("kwargs, word", [
    ({"weight_bits": 1}, "weight_bits"), ({"activation_bits": 16}, "activation_bits"),
    ({"observer_type": "kl"}, "observer_type"), ({"layer_bits": {"fc": 0}}, "layer_bits"),
])
def test_bad_configs(kwargs, word):
    with pytest.raises(deepseek.InvalidArgumentError, match=word):
        QATConfig(**kwargs)


def test_nothing_to_quantize_is_an_error():
    with pytest.raises(deepseek.InvalidArgumentError, match="Conv1d/Conv2d/Linear"):
        QATConfig().apply(torch.nn.Sequential(torch.nn.ReLU()))


def test_config_round_trips_through_json():
    cfg = QATConfig(weight_bits=4, learnable=True, skip=("fc",), layer_bits={"conv1": 8})
    assert QATConfig.from_json(cfg.to_json()) == cfg


def test_convert_puts_weights_on_the_grid_and_serializes(tmp_path):
    torch.manual_seed(0)
    m = QATConfig(weight_bits=4).apply(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 3)))
    with pytest.raises(deepseek.InvalidArgumentError, match="calibrat"):
        convert(m)
    calibrate(m, [torch.randn(4, 3, 8, 8) for _ in range(3)])
    convert(m)
    scale, _ = m[0].weight_fq.qparams()
    q = m[0].weight / scale.reshape(-1, 1, 1, 1)
    torch.testing.assert_close(q, torch.round(q), atol=1e-4, rtol=0)  # integer multiples of the scale
    assert q.abs().max() <= 7
    x = torch.randn(2, 3, 8, 8)
    ref = m(x)
    save_file(m.state_dict(), tmp_path / "q.safetensors")
    m2 = QATConfig(weight_bits=4).apply(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 3)))
    calibrate(m2, [torch.randn(1, 3, 8, 8)])  # shapes the buffers; values come from the file
    m2.load_state_dict(load_file(tmp_path / "q.safetensors"))
    for _, fq in fake_quantizers(m2):
        fq.observe = False
    torch.testing.assert_close(m2(x), ref)


class DigitNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.c1(x).relu()
        x = torch.nn.functional.max_pool2d(self.c2(x).relu(), 2)
        return self.fc(x.flatten(1))


def test_w4_lsq_qat_recovers_what_w4_ptq_loses():
    """Real data (digits): 4-bit weights / 8-bit activations. PTQ loses accuracy; LSQ QAT wins most of it back."""
    torch.manual_seed(0)
    train, test = assets.digits().split(0.2, seed=0)
    fp32 = fit_classifier(DigitNet(), train, epochs=12, lr=3e-3)
    base = accuracy(fp32, test)
    cfg = QATConfig(weight_bits=2, activation_bits=8, per_channel_weights=False)

    import copy

    ptq = cfg.apply(copy.deepcopy(fp32))
    calibrate(ptq, train.loader(256))
    ptq_acc = accuracy(convert(ptq), test)

    qat = QATConfig(weight_bits=2, activation_bits=8, per_channel_weights=False, learnable=True).apply(copy.deepcopy(fp32))
    calibrate(qat, train.loader(256), max_batches=1)
    for _, fq in fake_quantizers(qat):
        fq.observe = False
    qat_acc = accuracy(convert(fit_classifier(qat, train, epochs=6, lr=1e-3)), test)
    assert base > 0.95
    assert qat_acc > ptq_acc + 0.02, (base, ptq_acc, qat_acc)
    assert qat_acc > base - 0.03
