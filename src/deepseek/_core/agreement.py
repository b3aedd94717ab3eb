"""How closely one model's class scores follow a reference's: top-1 agreement on all, confident and clear inputs.

Pure NumPy, below every layer that judges a model (evaluate, optimize, the INT8 floors of quantization).
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONFIDENT = 0.5  # reference top-1 probability above which an input counts as confident
CLEAR_MARGIN = 0.2  # a confident input is clear when the reference top-1 leads the runner-up by this much


def agreement_interval(agreeing: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of an agreement rate ``agreeing / total``: how far a figure from a
    few held-out samples may be from the rate on many (8 of 8 agreeing is [0.68, 1.0], not a proven 100 %)."""
    if total <= 0:
        return 0.0, 1.0
    p = agreeing / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def fidelity(ref_logits: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """How closely ``logits`` follow a reference's on the same inputs: top-1 agreement on all inputs, on confident
    ones (reference top-1 probability >= 0.5) and on clear ones (confident, top-1 leads the runner-up by >= 0.2),
    disagreements (and those on near-ties), and the mean KL(reference || model)."""
    p_ref, p = _softmax(ref_logits), _softmax(logits)
    agree = logits.argmax(1) == ref_logits.argmax(1)
    confident = p_ref.max(1) >= CONFIDENT
    top2 = np.sort(p_ref, axis=1)[:, -2:]
    near_tie = top2[:, 1] - top2[:, 0] < CLEAR_MARGIN  # the reference itself barely prefers its top-1
    clear = confident & ~near_tie
    kl = float(np.mean(np.sum(p_ref * (np.log(p_ref + 1e-12) - np.log(p + 1e-12)), axis=1)))
    return {"agreement": float(agree.mean()), "views": int(agree.size), "confident_views": int(confident.sum()),
            "confident_agreement": float(agree[confident].mean()) if confident.any() else None,
            "clear_views": int(clear.sum()), "clear_agreement": float(agree[clear].mean()) if clear.any() else None,
            "disagreements": int((~agree).sum()), "disagreements_near_tie": int((~agree & near_tie).sum()),
            "mean_kl": kl}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
