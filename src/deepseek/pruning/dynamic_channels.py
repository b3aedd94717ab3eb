"""Dynamic channel selection: input-dependent gating of convolution output channels, after Feature Boosting and
Suppression (FBS; Gao et al., ICLR 2019).

Each ``Conv2d`` (+ its ``BatchNorm2d``) gets a small saliency predictor: the input's per-channel mean absolute value
-> a linear layer -> ReLU gives one saliency per output channel and sample; the ``k = ceil(keep * out)`` most
salient channels are kept (winner-take-all), the others are zero, and the kept ones are scaled by their saliency.
Training computes every channel and masks (so the predictor learns through the kept saliencies); in eval mode at
batch 1 the skipped channels are not computed: the convolution runs with the kept filters only (BatchNorm folded
in), and when its input comes from another gated convolution through element-wise layers only (ReLU, pooling,
dropout) it reads only the input channels that one kept. At batch > 1 each sample has its own channels: eval runs
the samples one by one with their own filters (``per_sample=True``, default) or the dense convolution masked
(``per_sample=False``) — whichever is faster depends on the layer sizes and is measured, not assumed
(benchmarks/bench_dynamic_channels.py). ``model.executed_macs`` counts the multiply-accumulates the last eval
forward actually ran in the gated convolutions and their predictors.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F

from .._core.checks import check_flag, check_number
from .._core.errors import invalid
from .._core.tensors import as_input_tuple, flatten_outputs, to_torch
from .structured import _output_shapes

_PASS_THROUGH = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.Dropout,
                 torch.nn.Dropout2d, torch.nn.Identity)


class GatedConv2d(torch.nn.Module):
    """A ``Conv2d`` (and the ``BatchNorm2d`` after it) whose output channels are chosen per input."""

    def __init__(self, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d | None, keep: float) -> None:
        super().__init__()
        self.conv, self.bn = conv, bn
        self.k = max(1, math.ceil(keep * conv.out_channels))
        self.predictor = torch.nn.Linear(conv.in_channels, conv.out_channels, dtype=conv.weight.dtype,
                                         device=conv.weight.device)
        with torch.no_grad():  # start near "every channel as it was": saliency ~1, then learned
            self.predictor.weight.normal_(0.0, 0.01)
            self.predictor.bias.fill_(1.0)
        self.producer: GatedConv2d | None = None  # the gated conv whose output this one reads, if any
        self.per_sample = True
        self.kept: torch.Tensor | None = None  # (batch, k) output channels kept by the last forward
        self.last_saliency: torch.Tensor | None = None
        self.macs = 0

    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.predictor(x.abs().mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.saliency(x)
        self.last_saliency = s
        top, kept = s.topk(self.k, dim=1)
        self.kept = kept
        if self.training or not self.per_sample:
            y = self.conv(x)
            if self.bn is not None:
                y = self.bn(y)
            mask = torch.zeros_like(s).scatter(1, kept, top)
            if not self.training:
                self.macs = self._dense_macs(y) + self._predictor_macs(x)
            return y * mask[:, :, None, None]
        w, b = self._folded()
        outputs = [self._gathered(x[i:i + 1], w, b, kept[i], top[i], i) for i in range(x.shape[0])]
        self.macs = sum(m for _, m in outputs) + self._predictor_macs(x)
        return torch.cat([o for o, _ in outputs])

    # -- eval: compute the kept channels only ---------------------------------------------------------------
    def _folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The convolution with BatchNorm folded in, cached until any of the tensors it comes from changes."""
        sources = [self.conv.weight, self.conv.bias] + ([self.bn.weight, self.bn.bias, self.bn.running_mean,
                                                          self.bn.running_var] if self.bn is not None else [])
        key = tuple((id(t), t._version) if t is not None else None for t in sources)
        if getattr(self, "_folded_key", None) != key:
            with torch.no_grad():
                self._folded_cache = self._fold()
            self._folded_key = key
        return self._folded_cache

    def _fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.conv.weight
        b = self.conv.bias if self.conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        if self.bn is None:
            return w, b
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        return w * scale[:, None, None, None], (b - self.bn.running_mean) * scale + self.bn.bias

    def _gathered(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, kept: torch.Tensor, top: torch.Tensor,
                  sample: int) -> tuple[torch.Tensor, int]:
        w, b = w.index_select(0, kept), b.index_select(0, kept)
        inputs = None
        if self.producer is not None and self.producer.kept is not None:
            inputs = self.producer.kept[sample]
            x = x.index_select(1, inputs)
            w = w.index_select(1, inputs)
        conv = self.conv
        y = F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups) * top[None, :, None, None]
        out = y.new_zeros((1, conv.out_channels, *y.shape[2:]))
        out.index_copy_(1, kept, y)
        kh, kw = conv.kernel_size
        return out, int(y.shape[1] * w.shape[1] * kh * kw * y.shape[2] * y.shape[3])

    def _dense_macs(self, y: torch.Tensor) -> int:
        kh, kw = self.conv.kernel_size
        return int(y.shape[0] * self.conv.out_channels * self.conv.in_channels * kh * kw * y.shape[2] * y.shape[3])

    def _predictor_macs(self, x: torch.Tensor) -> int:
        return int(x.shape[0] * (x.shape[1] * x.shape[2] * x.shape[3] + self.predictor.in_features
                                 * self.predictor.out_features))


class DynamicChannelModel(torch.nn.Module):
    """The gated model (train it like any module); ``executed_macs`` / ``dense_macs`` after an eval forward."""

    def __init__(self, model: torch.nn.Module, gates: list[GatedConv2d], keep: float) -> None:
        super().__init__()
        self.model, self.keep = model, keep
        self._gates = gates

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        for gate in self._gates:
            gate.kept = None
        return self.model(*args, **kwargs)

    @property
    def gates(self) -> list[GatedConv2d]:
        return list(self._gates)

    def set_per_sample(self, per_sample: bool) -> DynamicChannelModel:
        """Eval at batch > 1: each sample's own filters (True) or the dense convolution masked (False)."""
        for gate in self._gates:
            gate.per_sample = bool(per_sample)
        return self

    @property
    def executed_macs(self) -> int:
        """Multiply-accumulates the gated convolutions and their predictors ran in the last eval forward."""
        return sum(g.macs for g in self._gates)

    def saliency_l1(self) -> torch.Tensor:
        """FBS's sparsity term for the last forward: the mean saliency over every gate's channels and samples (add
        ``strength * saliency_l1()`` to the loss so the predictors learn to switch channels off)."""
        found = [g.last_saliency.mean() for g in self._gates if g.last_saliency is not None]
        if not found:
            raise invalid("saliency_l1", "called before a forward", "a forward pass first")
        return torch.stack(found).mean()


def dynamic_channels(model: torch.nn.Module, keep: float = 0.7, example_inputs: Any = None, *,
                     skip_first: bool = True) -> DynamicChannelModel:
    """A copy of ``model`` whose ``Conv2d`` layers (groups=1) keep ``keep`` of their output channels per input.
    ``skip_first`` leaves the first convolution (reading the image) dense, as FBS does. ``example_inputs`` are
    run once to check the gated model gives outputs of the same shapes."""
    check_number(keep, "keep", above=0, maximum=1, expected="a fraction of channels in (0, 1]")
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    if example_inputs is None:
        raise invalid("example_inputs", None, "sample inputs (a tensor or a tuple) to trace and check the model")
    check_flag(skip_first, "skip_first")
    examples = tuple(to_torch(x) for x in as_input_tuple(example_inputs, "example_inputs"))
    shapes = _output_shapes(copy.deepcopy(model).eval(), examples)  # an eval copy: BatchNorm statistics stay
    model = copy.deepcopy(model)
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as e:  # any tracing failure is the model's, named below
        raise invalid("model", type(model).__name__, f"a model torch.fx can trace ({type(e).__name__}: "
                      f"{str(e)[:200]})") from None
    modules = dict(model.named_modules())
    convs = [n for n in graph.nodes if n.op == "call_module" and isinstance(modules[n.target], torch.nn.Conv2d)
             and modules[n.target].groups == 1]
    if skip_first and convs:
        convs = convs[1:]
    if not convs:
        raise invalid("model", type(model).__name__, "a model with Conv2d layers (groups=1) to gate")
    gates: dict[str, GatedConv2d] = {}
    for node in convs:
        users = list(node.users)
        bn_node = users[0] if len(users) == 1 and users[0].op == "call_module" and isinstance(
            modules[users[0].target], torch.nn.BatchNorm2d) else None
        bn = modules[bn_node.target] if bn_node is not None else None
        gate = GatedConv2d(modules[node.target], bn, keep)
        gates[node.target] = gate
        _replace(model, node.target, gate)
        if bn_node is not None:
            _replace(model, bn_node.target, torch.nn.Identity())
    # which gated conv produced each gated conv's input (through element-wise layers only)
    for node in convs:
        source = node.args[0]
        while source.op == "call_module" and not isinstance(modules[source.target], torch.nn.Conv2d):
            module = modules[source.target]
            if isinstance(module, torch.nn.BatchNorm2d) and source.args[0].target in gates:
                source = source.args[0]
                break
            if not isinstance(module, _PASS_THROUGH):
                break
            source = source.args[0]
        if source.op == "call_function" and source.target in (F.relu, torch.relu):
            source = source.args[0]
        if source.op == "call_module" and source.target in gates:
            gates[node.target].producer = gates[source.target]
    wrapped = DynamicChannelModel(model, list(gates.values()), float(keep))
    with torch.no_grad():
        was = model.training
        got = [tuple(t.shape) for t in flatten_outputs(wrapped.eval()(*examples))]
        wrapped.train(was)
    if shapes != got:
        raise invalid("model", type(model).__name__, f"a model whose outputs keep their shapes when gated ({shapes} "
                      f"became {got})")
    return wrapped


def _replace(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, module)
