"""What a replay achieved: alert precision/recall/F1, average precision, the Handbook's card-precision@k per day,
alert rate over time, per-event latency; written as JSON, Markdown, a daily CSV and PNG charts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._core.atomic import output_folder, write_bytes, write_json, write_text
from .._core.checks import check_int
from .._core.errors import invalid
from .replay import ReplayResult

DAY = 86400.0


def card_precision_at_k(decisions: Any, k: int) -> Any:
    """Per day: of the ``k`` keys (cards) with the highest score that day, the share with a fraud that day.
    (The Handbook also drops cards already known compromised; this is its plain form.)"""
    import pandas as pd

    scored = decisions.dropna(subset=["score"])
    day = (scored["time"] // DAY).astype("int64")
    per_card = scored.assign(day=day).groupby(["day", "key"]).agg(score=("score", "max"), fraud=("label", "max"))
    column = f"card_precision_at_{k}"
    return pd.DataFrame([{"day": int(d), column: float(g.nlargest(k, "score")["fraud"].sum()) / k}
                         for d, g in per_card.groupby(level="day")])


def summarize(result: ReplayResult, *, k: int = 100) -> dict[str, Any]:
    """The replay's figures (labels needed for the quality ones)."""
    import numpy as np

    k = check_int(k, "k", minimum=1)
    d = result.decisions
    scored = d.dropna(subset=["score"])
    lat = d["latency_us"].to_numpy()
    out: dict[str, Any] = {
        "events": len(d), "scored": len(scored), "alerts": int(scored["alert"].sum()),
        "alert_rate": float(scored["alert"].mean()) if len(scored) else math.nan,
        "latency_us": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                       "mean": float(lat.mean())},
        "engine": result.counters, "pipeline": result.pipeline_counters, "drifts": result.drifts,
        "config": result.config.to_dict()}
    if "label" in d.columns and len(scored):
        from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

        y, alert, score = scored["label"].to_numpy(), scored["alert"].to_numpy(), scored["score"].to_numpy()
        out.update(frauds=int(y.sum()), precision=float(precision_score(y, alert, zero_division=0)),
                   recall=float(recall_score(y, alert, zero_division=0)),
                   f1=float(f1_score(y, alert, zero_division=0)),
                   average_precision=float(average_precision_score(y, score)) if y.any() else math.nan)
        if scored["key"].notna().all():
            cp = card_precision_at_k(scored, k)
            out[f"card_precision_at_{k}_mean"] = float(cp[f"card_precision_at_{k}"].mean())
    return out


def daily(result: ReplayResult, *, k: int = 100) -> Any:
    """One row per day: events, alerts, alert rate, frauds and card-precision@k (when labelled)."""
    d = result.decisions.dropna(subset=["score"])
    day = (d["time"] // DAY).astype("int64")
    table = d.assign(day=day).groupby("day").agg(events=("score", "size"), alerts=("alert", "sum"))
    table["alert_rate"] = table["alerts"] / table["events"]
    if "label" in d.columns:
        table["frauds"] = d.assign(day=day).groupby("day")["label"].sum()
        if d["key"].notna().all():
            table = table.join(card_precision_at_k(d, k).set_index("day"))
    return table.reset_index()


def write_report(result: ReplayResult, folder: str | Path, *, k: int = 100) -> dict[str, Any]:
    """report.json, report.md, daily.csv, scores.png and (labelled) precision_recall.png in ``folder``: all
    computed first, then written (each atomically), report.json last."""
    from .._core.atomic import check_output

    if not isinstance(result, ReplayResult):
        raise invalid("result", type(result).__name__, "a ReplayResult from deepseek.stream.replay.replay")
    check_output(folder, argument="folder", folder=True)
    summary = summarize(result, k=k)
    table = daily(result, k=k)
    lines = ["# Stream replay", "", f"- events {summary['events']:,}, scored {summary['scored']:,}, alerts "
             f"{summary['alerts']:,} ({100 * summary['alert_rate']:.2f} %)",
             f"- latency per event (features + score): p50 {summary['latency_us']['p50']:.1f} µs, "
             f"p99 {summary['latency_us']['p99']:.1f} µs", f"- drifts detected: {summary['drifts']}"]
    if "precision" in summary:
        lines += [f"- precision {summary['precision']:.3f}, recall {summary['recall']:.3f}, F1 {summary['f1']:.3f}, "
                  f"average precision {summary['average_precision']:.3f}"]
        if f"card_precision_at_{k}_mean" in summary:
            lines.append(f"- card-precision@{k}, mean over days: {summary[f'card_precision_at_{k}_mean']:.3f}")
    lines += ["", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    charts = _charts(result)
    out = output_folder(folder)
    for name, data in charts.items():
        write_bytes(out / name, data)
    write_text(out / "daily.csv", table.to_csv(index=False))
    write_text(out / "report.md", "\n".join(lines) + "\n")
    write_json(out / "report.json", summary)
    return summary


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _charts(result: ReplayResult) -> dict[str, bytes]:
    """The PNG charts by file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = {}

    d = result.decisions.dropna(subset=["score"])
    days = (d["time"] - d["time"].min()) / DAY
    step = max(1, len(d) // 20000)  # a readable scatter
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.scatter(days[::step], d["score"][::step], s=2, alpha=0.3, label="score")
    if "label" in d.columns:
        fraud = d["label"].to_numpy()
        ax.scatter(days[fraud], d["score"][fraud], s=4, color="red", label="fraud")
    ax.plot(days, d["threshold"], color="black", lw=1, label="threshold")
    ax.set_xlabel("days since the first event")
    ax.set_ylabel("score")
    ax.legend(loc="upper right")
    fig.tight_layout()
    charts["scores.png"] = _png(fig)
    plt.close(fig)
    if "label" in d.columns and d["label"].any():
        from sklearn.metrics import precision_recall_curve

        precision, recall, _ = precision_recall_curve(d["label"].to_numpy(), d["score"].to_numpy())
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(recall, precision)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title("precision-recall of the scores")
        fig.tight_layout()
        charts["precision_recall.png"] = _png(fig)
        plt.close(fig)
    return charts
