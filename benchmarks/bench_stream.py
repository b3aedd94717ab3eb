"""Per-event window features: deepseek.stream's FeaturePipeline against River's Agg + TimeRolling, one run.

    python benchmarks/bench_stream.py [--events 200000] [--rounds 3] [--smoke]

The stream: the first ``--events`` transactions of ``deepseek.stream.simulate_transactions(seed=0)`` (the
Fraud-Detection Handbook's generation process, 5,000 customers; synthetic, no real fraud data ships offline). Each
implementation processes every event in arrival order in this process: the feature for the event, then the event
joins the window (River: ``learn_one`` then ``transform_one``); and the three fraud features
(transaction_amount_std, login_location_entropy, device_fingerprint_match) scored by
``RiskEngine`` (features + score + threshold per event). Per-event latency is timed around that step
(p50/p99), throughput over the whole stream; medians over ``--rounds`` interleaved rounds. River's TimeRolling
needs statistics that can be reverted, which its Entropy and Count are not, so the one feature both compute is the
1-hour standard deviation of the user's amounts; its values are cross-checked. Writes
benchmarks/results/stream.json. ``--smoke``: a 10-day, 200-customer simulation, 2,000 events, one round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import time
from typing import Any

from _common import add_smoke_flag, write_results
from deepseek._core.machine import describe, summary
from deepseek.stream import FeaturePipeline, handbook_features, simulate_transactions

FRAUD_FEATURES = ["transaction_amount_std", "login_location_entropy", "device_fingerprint_match"]


def simulate(n: int, smoke: bool) -> list[dict[str, Any]]:
    """The first ``n`` events of the Handbook-process simulation (5,000 customers, 10,000 terminals, 183 days)."""
    frame = (simulate_transactions(n_customers=200, n_terminals=400, n_days=10, seed=0) if smoke
             else simulate_transactions(seed=0))
    columns = ["tx_id", "user_id", "timestamp", "amount", "location", "device_fingerprint", "terminal_id"]
    return frame[columns].head(n).to_dict("records")


def run_ours(events: list[dict[str, Any]], features: list) -> tuple[list[int], float, list[dict[str, float]]]:
    return timed(FeaturePipeline(window_size=3600, features=features).process, events)


def timed(step: Any, events: list[dict[str, Any]]) -> tuple[list[int], float, list[Any]]:
    """``step(event)`` for every event: per-event nanoseconds, total seconds, outputs."""
    lat, out = [], []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for e in events:
        s = clock()
        f = step(e)
        lat.append(clock() - s)
        out.append(f)
    return lat, time.perf_counter() - t0, out


def run_scored(events: list[dict[str, Any]]) -> tuple[list[int], float, list[Any]]:
    """The three fraud features + RiskEngine's default model (scaler + logistic regression, trained online on
    the first 5,000 events' synthetic labels beforehand) and the dynamic threshold: what one event costs
    end to end."""
    from deepseek.stream import RiskEngine

    engine = RiskEngine(top_k=0).attach_pipeline(FeaturePipeline(window_size=3600, features=FRAUD_FEATURES,
                                                                 online_learning=True))
    engine.set_threshold(dynamic=True, base=0.85, alert_rate=0.01)
    rng = random.Random(1)
    for e in events[:5000]:  # warm the model so the scores are not all 0.5
        engine.score(e)
        engine.feedback(e["tx_id"], rng.random() < 0.02)
    engine.attach_pipeline(FeaturePipeline(window_size=3600, features=FRAUD_FEATURES, online_learning=True))
    return timed(engine.score, events)


def run_river(events: list[dict[str, Any]]) -> tuple[list[int], float, list[float]]:
    from river import feature_extraction, stats, utils

    agg = feature_extraction.Agg(on="amount", by="user_id",
                                 how=utils.TimeRolling(stats.Var, period=dt.timedelta(seconds=3600), ddof=0))
    times = [dt.datetime.fromtimestamp(e["timestamp"], dt.timezone.utc).replace(tzinfo=None) for e in events]
    lat, out = [], []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for e, t in zip(events, times):
        s = clock()
        agg.learn_one(e, t=t)
        v = agg.transform_one(e)
        lat.append(clock() - s)
        out.append(v)
    seconds = time.perf_counter() - t0
    return lat, seconds, [math.sqrt(max(0.0, next(iter(v.values())))) for v in out]


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_smoke_flag(parser)
    args = parser.parse_args()
    n, rounds = (2_000, 1) if args.smoke else (args.events, args.rounds)
    events = simulate(n, args.smoke)
    n = len(events)
    users = len({e["user_id"] for e in events})
    print(f"{n:,} simulated events, {users:,} users, {rounds} rounds", flush=True)
    cases = {"ours: amount std (1 h)": lambda: run_ours(events, ["transaction_amount_std"]),
             "River Agg + TimeRolling(Var): amount std (1 h)": lambda: run_river(events),
             "ours: the 3 fraud features (1 h)": lambda: run_ours(events, FRAUD_FEATURES),
             "ours: the 3 fraud features + RiskEngine score (logistic regression, dynamic threshold)":
                 lambda: run_scored(events),
             "ours: Handbook customer features (6: 1/7/30 days)": lambda: run_ours(events, handbook_features())}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    check: dict[str, Any] = {}
    for r in range(rounds):
        for name, fn in cases.items():
            lat, seconds, out = fn()
            samples[name].append({"p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99), "events_per_s": n / seconds})
            print(f"  round {r + 1} {name}: p50 {pct(lat, 0.5):.1f} µs, p99 {pct(lat, 0.99):.1f} µs, "
                  f"{n / seconds:,.0f} events/s", flush=True)
            if r == 0 and name.startswith("ours: amount std"):
                check["ours"] = [o["transaction_amount_std"] for o in out]
            if r == 0 and name.startswith("River"):
                check["river"] = out
    diffs = [abs(a - b) / max(1.0, abs(b)) for a, b in zip(check["ours"], check["river"])]
    table = {name: {k: statistics.median(s[k] for s in rows) for k in ("p50_us", "p99_us", "events_per_s")}
             for name, rows in samples.items()}
    ours, river = table["ours: amount std (1 h)"], table["River Agg + TimeRolling(Var): amount std (1 h)"]
    ratio = ours["events_per_s"] / river["events_per_s"]
    print(f"throughput, ours / River on the same feature: {ratio:.2f}x; values: max relative difference "
          f"{max(diffs):.2e}", flush=True)
    write_results(args, "stream.json", {
        "machine": describe(summary(threads=1)), "smoke": args.smoke, "events": n, "users": users,
        "rounds": rounds, "data": "simulate_transactions(seed=0), first events (Handbook process)", "results": table,
        "rounds_raw": samples, "ours_over_river_throughput": ratio, "max_relative_difference_vs_river": max(diffs)})


if __name__ == "__main__":
    main()
