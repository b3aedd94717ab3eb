"""Weight-only quantization of Linear layers for LLMs: int4 group-wise (asymmetric) and int8 per-channel
or group-wise (symmetric), run by PyTorch's packed weight-only matmul kernels.

The kernels (``aten._weight_int4pack_mm_for_cpu``, ``aten._weight_int8pack_mm``) are fast with bfloat16
activations and slow with float32 ones, so activations are computed in ``compute_dtype`` (bfloat16 by
default) and cast back. Group-wise int8 has no packed kernel: it dequantizes on the fly (smaller, not
faster). The state dict holds portable integer weights (``qweight``, ``scales``, ``zeros``), so a
quantized model round-trips through safetensors; kernel-specific packing is rebuilt after loading.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from .._core.checks import check_choice, check_int
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import invalid
from .._core.select import check_matched, check_patterns, child_slots, matches

GROUP_SIZES = (32, 64, 128, 256)
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclasses.dataclass(frozen=True)
class WeightOnlyConfig(BaseConfig):
    """``bits`` 4 (group-wise, asymmetric) or 8 (symmetric; per output channel when ``group_size`` is None).

    ``skip``: layers left in float, by exact name, ``re:`` regex or class name. ``layer_bits`` overrides the
    width per layer the same way (``{"lm_head": 8}``, as llama.cpp keeps the output layer at 8 bits); an
    override to a width other than ``bits`` uses per-channel int8 or int4 in groups of ``group_size or 32``. ``min_features``: Linear layers with fewer
    input features stay in float (tiny layers gain nothing).
    """

    bits: int = 4
    group_size: int | None = 32
    compute_dtype: str = "bfloat16"
    skip: tuple[str, ...] = ()
    layer_bits: tuple[tuple[str, int], ...] = ()
    min_features: int = 32

    def __post_init__(self) -> None:
        _check_bits("bits", self.bits)
        check_choice(self.group_size, "group_size", (*GROUP_SIZES, None),
                     expected=f"one of {GROUP_SIZES}, or None for per-channel int8")
        if self.bits == 4 and self.group_size is None:
            raise invalid("group_size", None, f"one of {GROUP_SIZES} for 4-bit weights (int4 is group-wise only)")
        check_choice(self.compute_dtype, "compute_dtype", _DTYPES, expected=f"one of {tuple(_DTYPES)}")
        check_int(self.min_features, "min_features", minimum=1, expected="a positive integer")
        object.__setattr__(self, "skip", check_patterns(self.skip, argument="skip"))
        pairs = self.layer_bits.items() if isinstance(self.layer_bits, dict) else self.layer_bits
        try:
            pairs = tuple((k, v) for k, v in pairs)
        except (TypeError, ValueError):
            raise invalid("layer_bits", self.layer_bits, "a dict of layer name (or 're:' regex) to 4 or 8") from None
        check_patterns([k for k, _ in pairs], argument="layer_bits")
        object.__setattr__(self, "layer_bits", pairs)
        for key, bits in self.layer_bits:
            _check_bits(f"layer_bits[{key!r}]", bits)

    def scheme_for(self, name: str, module: torch.nn.Module) -> tuple[int, int | None]:
        """(bits, group_size) of one layer; int4 falls back to per-channel int8 where the kernel cannot run it."""
        bits, group = self.bits, self.group_size
        for key, b in self.layer_bits:
            if matches(name, module, (key,)) and b != self.bits:
                bits, group = b, (None if b == 8 else self.group_size or 32)
                break
        return (8, None) if bits == 4 and not int4_supported(module) else (bits, group)


def int4_supported(module: torch.nn.Module) -> bool:
    """The CPU int4 kernel packs output channels in blocks of 16 (e.g. a 2-class head cannot use it)."""
    return module.out_features % 16 == 0


def _check_bits(argument: str, bits: Any) -> None:
    check_choice(bits, argument, (4, 8), expected="4 or 8 (weight-only kernels exist for int4 and int8)")


class WeightOnlyLinear(torch.nn.Module):
    """A Linear layer whose weight is stored as int4/int8 with float scales; computes ``x @ W^T + b``."""

    def __init__(self, in_features: int, out_features: int, bits: int, group_size: int | None,
                 compute_dtype: torch.dtype = torch.bfloat16, bias: bool = True) -> None:
        super().__init__()
        _check_bits("bits", bits)
        self.in_features, self.out_features, self.bits = in_features, out_features, bits
        self.group_size = group_size
        self.compute_dtype = compute_dtype
        # the kernels need K divisible by the group size (int8 per channel: by 16, or they crash)
        step = group_size or -(-in_features // 16) * 16
        self.padded_in = -(-in_features // step) * step
        groups = self.padded_in // step
        width = self.padded_in // 2 if bits == 4 else self.padded_in
        self.register_buffer("qweight", torch.zeros(out_features, width, dtype=torch.uint8 if bits == 4 else torch.int8))
        self.register_buffer("scales", torch.ones(out_features, groups))
        self.register_buffer("zeros", torch.zeros(out_features, groups) if bits == 4 else None)
        self.bias = torch.nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None
        self._packed: dict[str, Any] = {}
        self.register_load_state_dict_post_hook(lambda module, _: module._packed.clear())

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, bits: int, group_size: int | None,
                    compute_dtype: torch.dtype = torch.bfloat16) -> WeightOnlyLinear:
        if bits == 4 and not int4_supported(linear):
            raise invalid("bits", 4, f"8 for a layer with {linear.out_features} outputs (int4 needs a multiple of 16)")
        layer = cls(linear.in_features, linear.out_features, bits, group_size, compute_dtype, linear.bias is not None)
        layer.to(linear.weight.device)
        with torch.no_grad():
            q, scales, zeros = quantize_weight(linear.weight.detach().float(), bits, group_size, layer.padded_in)
            layer.qweight.copy_(_pack_nibbles(q) if bits == 4 else q)
            layer.scales.copy_(scales)
            if zeros is not None:
                layer.zeros.copy_(zeros)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def dequantized_weight(self) -> torch.Tensor:
        """The float weight this layer computes with, shape (out_features, in_features)."""
        step = self.group_size or self.padded_in
        q = _unpack_nibbles(self.qweight).float() if self.bits == 4 else self.qweight.float()
        w = q.view(self.out_features, -1, step) * self.scales.unsqueeze(-1)
        if self.bits == 4:
            w = w + (self.zeros - 8 * self.scales).unsqueeze(-1)
        return w.reshape(self.out_features, -1)[:, : self.in_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(self.compute_dtype)
        if self.padded_in != self.in_features:
            x2 = F.pad(x2, (0, self.padded_in - self.in_features))
        y = self._matmul(x2)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype != torch.float16:
            if self.bits == 4:
                packed, scale_zero = self._kernel_weights(x.dtype)
                return torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, self.group_size, scale_zero)
            if self.group_size is None:
                return torch.ops.aten._weight_int8pack_mm(x, self.qweight, self.scales[:, 0].to(x.dtype))
        # no packed kernel for this case (group-wise int8, other devices): dequantize, then a dense matmul
        w = self._packed.get(("dense", x.dtype, x.device))
        if w is None:
            w = F.pad(self.dequantized_weight(), (0, self.padded_in - self.in_features)).to(x.dtype)
            if not torch.is_grad_enabled():
                self._packed = {("dense", x.dtype, x.device): w}
        return x @ w.t()

    def _kernel_weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("int4", dtype)
        if key not in self._packed:
            q = _unpack_nibbles(self.qweight).to(torch.int32)
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
            scale_zero = torch.stack([self.scales, self.zeros], dim=-1).transpose(0, 1).contiguous().to(dtype)
            self._packed = {key: (packed, scale_zero)}
        return self._packed[key]

    def _apply(self, fn: Any, recurse: bool = True) -> WeightOnlyLinear:
        self._packed = {}  # device or dtype may change: rebuild kernel weights lazily
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        group = f"group_size={self.group_size}" if self.group_size else "per_channel"
        return f"in={self.in_features}, out={self.out_features}, int{self.bits}, {group}, compute={str(self.compute_dtype)[6:]}"


def quantize_weight(w: torch.Tensor, bits: int, group_size: int | None, padded_in: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Integer weights, scales and (int4) zeros for a (out, in) float weight.

    int4: per group ``w ≈ (q - 8) * scale + zero`` with q in 0..15 (min/max of the group map exactly).
    int8: per group (or row) ``w ≈ q * scale`` with q in -127..127.
    """
    out_features, in_features = w.shape
    padded_in = padded_in or in_features
    if padded_in != in_features:
        w = F.pad(w, (0, padded_in - in_features))
    step = group_size or padded_in
    groups = w.reshape(out_features, -1, step)
    if bits == 4:
        low = groups.amin(-1, keepdim=True)
        high = groups.amax(-1, keepdim=True)
        scale = ((high - low) / 15).clamp(min=1e-8)
        q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.uint8)
        return q.reshape(out_features, -1), scale.squeeze(-1), (low + 8 * scale).squeeze(-1)
    scale = (groups.abs().amax(-1, keepdim=True) / 127).clamp(min=1e-8)
    q = torch.round(groups / scale).clamp(-127, 127).to(torch.int8)
    return q.reshape(out_features, -1), scale.squeeze(-1), None


def _pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    return (q[:, 0::2] | (q[:, 1::2] << 4)).to(torch.uint8)


def _unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(packed.shape[0], -1)


def quantize_weights(model: torch.nn.Module, config: WeightOnlyConfig | None = None, **kwargs: Any) -> torch.nn.Module:
    """Replace the model's Linear layers, in place, by :class:`WeightOnlyLinear`; return the model.

    Pass a :class:`WeightOnlyConfig` or its fields as keywords (``quantize_weights(model, bits=4, group_size=64)``).
    """
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    config = config_or_fields(WeightOnlyConfig, config, kwargs)
    linears = [(name, m) for name, m in model.named_modules() if type(m) is torch.nn.Linear]
    check_matched(linears, config.skip, argument="skip", what="nn.Linear layer")
    check_matched(linears, [k for k, _ in config.layer_bits], argument="layer_bits", what="nn.Linear layer")
    dtype = _DTYPES[config.compute_dtype]
    swapped = 0
    for name, parent, attr, module in list(child_slots(model)):
        if type(module) is not torch.nn.Linear or matches(name, module, config.skip):
            continue
        if module.in_features < config.min_features:
            continue
        bits, group = config.scheme_for(name, module)
        setattr(parent, attr, WeightOnlyLinear.from_linear(module, bits, group, dtype))
        swapped += 1
    if swapped == 0:
        raise invalid("model", type(model).__name__, "a model with nn.Linear layers to quantize (none found or all skipped)")
    return model


def weight_only_layers(model: torch.nn.Module) -> dict[str, WeightOnlyLinear]:
    """The quantized layers of a model, by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, WeightOnlyLinear)}
