"""What a compile wrote and how it was verified: :class:`CompileResult`, the same shape for every lowering."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class CompileResult(Mapping[str, Any]):
    """The artifact ``output``, the ``backend`` that built it and why, its ``target_arch`` and ``precision`` (``fp32``,
    ``fp16``, ``bf16``, ``int8``, ``int8-dynamic``), its size, and everything its lowering measured (``details``: the
    verification's max abs diff and tolerance, INT8 agreement with FP32 and its interval, pruning, the arm64 bundle,
    ...). Reads like a mapping of those details (``result["max_abs_diff"]``); :meth:`summary` says it in words."""

    output: str
    backend: str
    target_arch: str
    precision: str
    size_bytes: int | None
    details: Mapping[str, Any]

    @classmethod
    def of(cls, details: Mapping[str, Any]) -> CompileResult:
        """The result of a lowering's record of what it did."""
        return cls(output=str(details["output"]), backend=str(details["backend"]),
                   target_arch=str(details.get("target_arch", "x86_64")), precision=str(details.get("precision", "fp32")),
                   size_bytes=details.get("size_bytes", details.get("program_bytes")), details=dict(details))

    def __getitem__(self, key: str) -> Any:
        return self.details[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.details)

    def __len__(self) -> int:
        return len(self.details)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.details)

    @property
    def below_floor(self) -> bool:
        """Whether a static INT8 build stayed below its agreement floor on held-out samples."""
        return bool(self.details.get("below_floor"))

    def summary(self) -> list[str]:
        """What was written and how it was checked, one line per fact (what ``deepseek compile`` prints)."""
        r, lines = self.details, []
        mb = (self.size_bytes or 0) / 1e6
        if r.get("pruned"):
            p = r["pruned"]
            lines.append(f"pruned {p['ratio']:.0%} of channels: parameters {p['param_ratio']:.0%}, MACs "
                         f"{p['mac_ratio']:.0%} of the original, not fine-tuned — expect accuracy to drop")
        lines.append(f"backend: {self.backend} — {r['why']}")
        verified = f"max abs diff {r.get('max_abs_diff', float('nan')):.2e} (tolerance {r.get('tolerance', float('nan')):.2e})"
        if self.backend == "inductor":
            int8 = self.precision == "int8"
            check = (f"top-1 agreement with FP32 PyTorch {r['int8_agreement']:.0%} on {r['checked_samples']} held-out "
                     "samples; " if int8 else "")
            lines.append(f"wrote {self.output} ({self.precision.upper()}, {mb:.1f} MB, compiled in {r['compile_s']:.0f} s); "
                         f"{check}verified against the {'PT2E reference graph' if int8 else 'source model'}: {verified}")
        elif self.backend == "openvino":
            if self.precision == "int8":
                check = _int8_check(r) + f" on {r['checked_samples']} held-out samples"
            else:
                check = f"verified against the source model: {verified}"
            lines.append(f"wrote {self.output} and its .bin ({self.precision.upper()}, {mb:.1f} MB); {check}")
        elif self.target_arch == "x86_64" and self.precision == "int8":
            low, high = r.get("int8_agreement_interval") or (None, None)
            check = _int8_check(r) + (f" (95 % interval {low:.0%}-{high:.0%})" if low is not None else "")
            lines.append(f"wrote {self.output} (INT8, {mb:.1f} MB, FP32 {r['fp32_size_bytes'] / 1e6:.1f} MB); {check} on "
                         f"{r['checked_samples']} held-out samples")
            lines.append(r["int8_summary"])
        elif self.target_arch == "arm64":
            if not r["verified_under"]:
                check = "NOT verified: install qemu-user to run it under emulation"
            elif self.precision == "int8":
                check = (f"verified under {r['verified_under']}: top-1 agreement with FP32 PyTorch "
                         f"{r['int8_agreement']:.0%} on {r['checked_samples']} held-out samples, max abs diff "
                         f"{r['max_abs_diff']:.3g}")
            else:
                check = f"verified under {r['verified_under']} against {r.get('reference', 'PyTorch')}: {verified}"
            lines.append(f"wrote {self.output} and {r['bundle']}/ ({self.precision} program {r['program_bytes'] / 1e6:.1f} MB, runtime "
                         f"libraries, C header, example runner); {check}")
        elif self.precision == "int8-dynamic":
            lines.append(f"wrote {self.output} (dynamic INT8, {mb:.1f} MB); export verified against the source model: "
                         f"max abs diff {r['export_max_abs_diff']:.2e} (tolerance {r['export_tolerance']:.2e}); INT8 "
                         f"output max abs diff {r['max_abs_diff']:.3g} — judge its accuracy on held-out data "
                         "(deepseek evaluate, deepseek optimize)")
        else:
            fp16 = (f", FP16: {r['fp16_nodes']} nodes, {len(r['kept_fp32'])} kept FP32" if self.precision == "fp16"
                    else "")
            lines.append(f"wrote {self.output} ({mb:.1f} MB, ORT level {r['ort_level']}{fp16}); verified against the "
                         f"source model: {verified}")
        return lines


def _int8_check(r: Mapping[str, Any]) -> str:
    if r.get("int8_agreement") is not None:
        return f"top-1 agreement with FP32 PyTorch {r['int8_agreement']:.0%}"
    return f"first output's SQNR against FP32 PyTorch {r['int8_sqnr_db']:.1f} dB"
