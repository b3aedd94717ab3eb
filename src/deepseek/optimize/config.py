"""OptimizeConfig: the budget and the search ``deepseek optimize`` runs under."""

from __future__ import annotations

import dataclasses

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid

TARGETS = ("x86_64", "arm64", "cuda")
OBJECTIVES = ("latency", "size")
LOWERINGS = ("ort-fp32", "ort-int8", "ort-int8-dynamic", "inductor-fp32", "inductor-bf16", "inductor-int8",
             "openvino-fp32", "openvino-int8")  # OpenVINO's only where its extra is installed
# what each target searches, and its FP32 baseline (first): arm64 bundles are ExecuTorch + XNNPACK programs; a CUDA
# artifact is an ONNX Runtime graph in float32 or float16 (INT8 for CUDA is not in this version)
TARGET_LOWERINGS = {"x86_64": LOWERINGS, "arm64": ("xnnpack-fp32", "xnnpack-int8"), "cuda": ("ort-fp32", "ort-fp16")}
# searched only where the CPU has bfloat16 arithmetic (AVX512-BF16 or AMX): elsewhere it is emulated, slower than fp32
NEEDS_BF16 = ("inductor-bf16",)
# what an ONNX file (no PyTorch source) is searched over, FP32 baseline first; OpenVINO's only with its extra
ONNX_LOWERINGS = ("ort-fp32", "ort-int8", "ort-int8-dynamic", "openvino-fp32", "openvino-int8")
JUDGES = ("auto", "classes", "metric", "fidelity")
FALLBACKS = (0, 1, 2, 4, 8, 16, 32)


@dataclasses.dataclass(frozen=True)
class OptimizeConfig(BaseConfig):
    """``max_accuracy_drop`` in percentage points below the FP32 model (labeled data: accuracy; unlabeled photos:
    disagreement with FP32 on confident views); ``objective`` what to minimise among the candidates that keep
    within it; ``trials`` candidates measured (Optuna picks them; a repeat is not rebuilt); ``lowerings`` and
    ``prune_ratios`` the space searched (``lowerings`` empty: all of ``target``'s, its FP32 baseline first); a pruned candidate is fine-tuned for ``finetune_epochs`` on the first
    ``finetune_samples`` training images when ``data`` is a bundled labeled set (its held-out part judges it)."""

    target: str = "x86_64"
    data: str = "photos"
    max_accuracy_drop: float = 0.5
    objective: str = "latency"
    trials: int = 12
    seed: int = 0
    calib_samples: int = 128
    eval_limit: int | None = None
    threads: int = 2
    lowerings: tuple[str, ...] = ()  # empty: every lowering of the target (TARGET_LOWERINGS)
    prune_ratios: tuple[float, ...] = ()
    finetune_epochs: int = 1  # a pruned candidate's fine-tune on a labeled set's training part (0: none)
    finetune_samples: int = 10000
    # how candidates are judged (:mod:`.data`): "auto" is the metric when one is named, else class scores
    judge: str = "auto"
    metric: str | None = None  # "module:function" or "path/to/file.py:function"; a callable is passed to optimize()
    min_sqnr_db: float = 30.0  # the fidelity judge's floor on every output's SQNR

    def __post_init__(self) -> None:
        check_choice(self.target, "target", TARGETS, expected=f"one of {TARGETS}")
        if not isinstance(self.data, str) or not self.data:
            raise invalid("data", self.data, "the name of a bundled set or the path of a data folder")
        for name in ("lowerings", "prune_ratios"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
                raise invalid(name, value, "a tuple (or list)")
            object.__setattr__(self, name, tuple(value))
        if any(not isinstance(lw, str) for lw in self.lowerings):
            raise invalid("lowerings", list(self.lowerings), "lowering names (strings)")
        object.__setattr__(self, "lowerings", self.lowerings or TARGET_LOWERINGS[self.target])
        check_number(self.max_accuracy_drop, "max_accuracy_drop", minimum=0,
                     expected="percentage points >= 0, e.g. 0.5")
        check_choice(self.objective, "objective", OBJECTIVES, expected=f"one of {OBJECTIVES}")
        for name, minimum in (("trials", 1), ("calib_samples", 1), ("threads", 1), ("finetune_samples", 1),
                              ("finetune_epochs", 0), ("seed", 0)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=minimum))
        check_int(self.eval_limit, "eval_limit", minimum=8, optional=True,
                  expected="an integer >= 8 or None (all held-out samples)")
        check_choice(self.judge, "judge", JUDGES, expected=f"one of {JUDGES}")
        if self.metric is not None and (not isinstance(self.metric, str) or self.metric.count(":") != 1
                                        or not all(self.metric.split(":"))):
            raise invalid("metric", self.metric, "module:function or path/to/file.py:function")
        if self.metric is not None and self.judge not in ("auto", "metric"):
            raise invalid("metric", self.metric, f"nothing with judge {self.judge!r} (a metric is its own judge)")
        check_number(self.min_sqnr_db, "min_sqnr_db", expected="a number of dB, e.g. 30")
        allowed = TARGET_LOWERINGS[self.target] + (ONNX_LOWERINGS if self.target == "x86_64" else ())
        if any(lw not in allowed for lw in self.lowerings):
            raise invalid("lowerings", ",".join(self.lowerings), f"a subset of {','.join(allowed)} for target "
                                                                 f"{self.target}")
        for ratio in self.prune_ratios:
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
                raise invalid("prune_ratios", list(self.prune_ratios), "fractions of channels between 0 and 1")

    @property
    def baseline(self) -> str:
        """The FP32 lowering every candidate is compared with."""
        return TARGET_LOWERINGS[self.target][0]


def latency_device(target: str) -> str | None:
    """Where this host can time ``target``'s artifacts (``cpu``, ``cuda``), or None: arm64 code runs here only
    under emulation, and CUDA needs ONNX Runtime's CUDA execution provider."""
    import platform

    if target == "x86_64":
        return "cpu" if platform.machine().lower() in ("x86_64", "amd64") else None
    if target == "arm64":
        return "cpu" if platform.machine().lower() in ("aarch64", "arm64") else None
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else None
