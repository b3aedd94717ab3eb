"""Per-layer quantization error report: which layers lose the most, and which to keep in higher precision."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from .qat import QATConfig, _QATMixin
from .sensitivity import as_batches, calibrated_copy, layer_sensitivity, output_kl, sqnr_db


@dataclasses.dataclass(frozen=True)
class LayerReport:
    name: str
    type: str
    weight_bits: int
    kl: float  # KL(fp32 ‖ quantized) of the model output with only this layer quantized
    sqnr_db: float  # output SQNR with only this layer quantized
    weight_sqnr_db: float  # SQNR of the layer's own weights after quantization
    weight_range: tuple[float, float]
    activation_range: tuple[float, float]  # the layer's input range as calibrated
    keep: bool  # recommended to stay in higher precision


@dataclasses.dataclass(frozen=True)
class QuantReport:
    layers: list[LayerReport]
    model_kl: float  # everything quantized
    model_sqnr_db: float
    model_top1_agreement: float
    samples: int

    @property
    def keep(self) -> list[str]:
        return [ly.name for ly in self.layers if ly.keep]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "keep": self.keep}

    def save_json(self, path: str | Path) -> Path:
        from .._core.atomic import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self, top: int = 20) -> Any:
        from .._core.table import Table

        t = Table(title=f"per-layer quantization error (all layers quantized: KL {self.model_kl:.3g}, "
                        f"SQNR {self.model_sqnr_db:.1f} dB, top-1 agreement {self.model_top1_agreement:.1%})",
                  title_justify="left")
        t.add_column("layer", overflow="fold", min_width=20)
        for col in ("type", "bits", "KL alone", "SQNR alone dB", "weight SQNR dB", "weight range", "input range", "advice"):
            t.add_column(col, justify="left" if col in ("type", "advice") else "right")
        for ly in self.layers[:top]:
            t.add_row(ly.name, ly.type, str(ly.weight_bits), f"{ly.kl:.2e}", f"{ly.sqnr_db:.1f}", f"{ly.weight_sqnr_db:.1f}",
                      f"[{ly.weight_range[0]:.2g}, {ly.weight_range[1]:.2g}]",
                      f"[{ly.activation_range[0]:.2g}, {ly.activation_range[1]:.2g}]",
                      "[yellow]keep higher precision[/]" if ly.keep else "int")
        return t

    def plot(self, path: str | Path, top: int = 25) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .._core.atomic import atomic_path

        layers = self.layers[:top][::-1]
        fig, ax = plt.subplots(figsize=(9, max(3.0, 0.28 * len(layers) + 1.2)))
        ax.barh([ly.name for ly in layers], [ly.kl for ly in layers], color=["C3" if ly.keep else "C0" for ly in layers])
        ax.set_xlabel("output KL divergence with only this layer quantized (red: keep in higher precision)")
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(f"quantization sensitivity — all layers: KL {self.model_kl:.3g}, top-1 agreement {self.model_top1_agreement:.1%}",
                     fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        return Path(path)


def quantization_report(model: torch.nn.Module, calibration: Any, config: QATConfig | None = None, *,
                        keep_share: float = 0.5, keep_max: float = 0.1) -> QuantReport:
    """Quantize ``model`` per ``config`` on ``calibration`` data and report each layer's error.

    Layers to keep in higher precision: the most sensitive ones, in order, until they account for
    ``keep_share`` of the summed per-layer KL — at most ``keep_max`` of the layers (at least one).
    """
    config = config or QATConfig()
    batches = as_batches(calibration)
    ranking = layer_sensitivity(model, batches, config)
    ref, q = calibrated_copy(model, batches, config)
    with torch.no_grad():
        got = torch.cat([q(b) for b in batches])
    modules = dict(q.named_modules())
    total = sum(s.kl for s in ranking) or 1.0
    budget = max(1, int(keep_max * len(ranking)))
    keep, acc = set(), 0.0
    for s in ranking:
        if acc >= keep_share * total or len(keep) >= budget:
            break
        keep.add(s.name)
        acc += s.kl
    layers = []
    for s in ranking:
        m = modules[s.name]
        assert isinstance(m, _QATMixin)
        w = m.weight.detach()
        with torch.no_grad():
            wq = m.weight_fq(w)
        obs = m.input_fq.observer
        layers.append(LayerReport(
            s.name, type(m).__name__.removeprefix("QAT"), m.weight_fq.spec.bits, s.kl, s.sqnr_db, sqnr_db(w, wq),
            (float(w.min()), float(w.max())), (float(obs.min_val.min()), float(obs.max_val.max())), s.name in keep,
        ))
    agree = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
    return QuantReport(layers, output_kl(ref, got), sqnr_db(ref, got), agree, int(ref.shape[0]))
