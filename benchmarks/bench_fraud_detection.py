"""Fraud detection on the Handbook's simulated transactions: streaming RiskEngine vs the Handbook's offline
baselines and River's QuantileFilter(HalfSpaceTrees), one run.

    python benchmarks/bench_fraud_detection.py [--days 183] [--smoke]

Data: ``deepseek.stream.simulate_transactions(seed=0)`` (the Handbook's generation process; synthetic — no real
labeled fraud data ships offline). Features, the same for every model: the Handbook's customer features (count and
mean amount over 1/7/30 days), its terminal count and risk over 1/7/30 days ending 7 days ago (labels known after
7 days), the amount, and the three fraud features (transaction_amount_std,
login_location_entropy, device_fingerprint_match; the Handbook's weekend/night flags are left out).

Protocol (the Handbook's chapter 3.4 baseline): train on the week from 2018-07-25, skip the 7-day label delay,
test on the week from 2018-08-08; average precision and card-precision@100 (per day, mean) on the test week.
- Offline baselines (scikit-learn, standardised features): logistic regression, a depth-2 decision tree, a random
  forest (100 trees), trained on the training week.
- Streaming: RiskEngine + online logistic regression (River) over every transaction from 45 days before the
  training week to the end of the test week, each label fed back 7 days after its transaction; its test-week
  scores are evaluated. The same with ``PeriodicRefit``: a scikit-learn logistic regression refit after every
  10,000 labels (about a day) on the last 200,000 (about three weeks).
- River's QuantileFilter(HalfSpaceTrees) (unsupervised, streaming) on the same features.
- Alert rate through drift: the streaming replay again with a 1 % target alert rate (base 0) and every amount x3
  in the test week (an injected drift); the daily alert rates of the dynamic threshold over the last 14 days.
Writes benchmarks/results/fraud_detection.json. ``--smoke``: 150 customers, 70 days, shifted periods.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from _common import add_smoke_flag, write_results
from deepseek._core.machine import describe, summary
from deepseek.stream import (
    FeaturePipeline,
    PeriodicRefit,
    RiskEngine,
    handbook_features,
    simulate_transactions,
)
from deepseek.stream.report import card_precision_at_k

DAY = 86400.0
FEATURES = [*handbook_features(), "transaction_amount", "transaction_amount_std", "login_location_entropy",
            "device_fingerprint_match"]


def features_with_delayed_labels(frame: pd.DataFrame, delay: float) -> pd.DataFrame:
    """Every row's features through the streaming pipeline, labels fed to it ``delay`` seconds after each row."""
    pipeline = FeaturePipeline(features=FEATURES)
    pending: deque[tuple[float, int, bool]] = deque()
    rows = []
    for row in frame.to_dict("records"):
        while pending and pending[0][0] <= row["timestamp"]:
            _, tx, y = pending.popleft()
            pipeline.label(tx, y)
        rows.append(pipeline.process(row))
        pending.append((row["timestamp"] + delay, row["tx_id"], row["is_fraud"]))
    return pd.DataFrame(rows, index=frame.index)


def evaluate(part: pd.DataFrame, scores: np.ndarray, k: int) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    decisions = pd.DataFrame({"time": part["timestamp"].to_numpy(), "key": part["user_id"].to_numpy(),
                              "score": scores, "label": part["is_fraud"].to_numpy()})
    cp = card_precision_at_k(decisions, k)
    return {"average_precision": float(average_precision_score(part["is_fraud"], scores)),
            f"card_precision_at_{k}": float(cp[f"card_precision_at_{k}"].mean())}


def stream_scores(frame: pd.DataFrame, model: Any, delay: float, threshold: dict[str, Any]) -> tuple[np.ndarray,
                                                                                                      np.ndarray,
                                                                                                      float]:
    """Scores and alerts of a RiskEngine over ``frame`` in order, labels fed back ``delay`` after each row."""
    engine = RiskEngine(model, top_k=0).attach_pipeline(FeaturePipeline(features=FEATURES, online_learning=True))
    engine.set_threshold(**threshold)
    pending: deque[tuple[float, int, bool]] = deque()
    scores, alerts = np.zeros(len(frame)), np.zeros(len(frame), dtype=bool)
    t0 = time.perf_counter()
    for i, row in enumerate(frame.to_dict("records")):
        while pending and pending[0][0] <= row["timestamp"]:
            _, tx, y = pending.popleft()
            engine.feedback(tx, y)
        d = engine.score(row)
        scores[i], alerts[i] = d.score, d.alert
        pending.append((row["timestamp"] + delay, row["tx_id"], row["is_fraud"]))
    return scores, alerts, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=183)
    add_smoke_flag(parser)
    args = parser.parse_args()
    from river import anomaly, compose, linear_model, preprocessing
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if args.smoke:
        frame = simulate_transactions(n_customers=150, n_terminals=300, n_days=70, seed=0)
        train_start, k = pd.Timestamp("2018-05-16"), 10
    else:
        frame = simulate_transactions(n_days=args.days, seed=0)
        train_start, k = pd.Timestamp("2018-07-25"), 100
    delay = 7 * DAY
    train_lo = train_start.timestamp()
    test_lo, test_hi = train_lo + 14 * DAY, train_lo + 21 * DAY
    # 45 days before the training week fill the 30-day windows and the 7-day label delay
    frame = frame[(frame["timestamp"] >= train_lo - 45 * DAY) & (frame["timestamp"] < test_hi)].reset_index(drop=True)
    print(f"{len(frame):,} transactions up to the end of the test week ({frame['is_fraud'].mean():.2%} fraud)",
          flush=True)
    t0 = time.perf_counter()
    feats = features_with_delayed_labels(frame, delay)
    print(f"features for every row: {time.perf_counter() - t0:.0f} s", flush=True)
    train = (frame["timestamp"] >= train_lo) & (frame["timestamp"] < train_lo + 7 * DAY)
    test = (frame["timestamp"] >= test_lo) & (frame["timestamp"] < test_hi)
    x_train, y_train = feats[train].to_numpy(), frame.loc[train, "is_fraud"].to_numpy()
    x_test = feats[test].to_numpy()
    results: dict[str, Any] = {}
    offline = {"logistic regression (offline, Handbook baseline)": LogisticRegression(max_iter=1000),
               "decision tree, depth 2 (offline, Handbook baseline)": DecisionTreeClassifier(max_depth=2,
                                                                                            random_state=0),
               "random forest, 100 trees (offline, Handbook baseline)": RandomForestClassifier(
                   n_estimators=100, n_jobs=2, random_state=0)}
    for name, model in offline.items():
        fitted = make_pipeline(StandardScaler(), model).fit(x_train, y_train)
        results[name] = evaluate(frame[test], fitted.predict_proba(x_test)[:, 1], k)
        print(f"  {name}: {results[name]}", flush=True)
    scores, _, seconds = stream_scores(frame, preprocessing.StandardScaler() | linear_model.LogisticRegression(),
                                       delay, {"dynamic": True, "base": 0.5, "alert_rate": 0.01})
    results["RiskEngine, online logistic regression (River), labels after 7 days"] = {
        **evaluate(frame[test], scores[test.to_numpy()], k), "events_per_s": len(frame) / seconds}
    print(f"  streaming LR: {results['RiskEngine, online logistic regression (River), labels after 7 days']}",
          flush=True)
    refit = PeriodicRefit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                          every=100 if args.smoke else 10_000, window=2_000 if args.smoke else 200_000,
                          min_labels=100 if args.smoke else 1_000)
    scores, _, seconds = stream_scores(frame, refit, delay, {"dynamic": True, "base": 0.5, "alert_rate": 0.01})
    name = "RiskEngine, logistic regression refit every 10,000 labels on the last 200,000, labels after 7 days"
    results[name] = {**evaluate(frame[test], scores[test.to_numpy()], k), "events_per_s": len(frame) / seconds,
                     "refits": refit.refits}
    print(f"  streaming refit LR: {results[name]}", flush=True)
    hst = compose.Pipeline(preprocessing.MinMaxScaler(),
                           anomaly.QuantileFilter(anomaly.HalfSpaceTrees(seed=0), q=0.99))
    scores, _, seconds = stream_scores(frame, hst, delay, {"dynamic": False, "base": 0.99})
    results["River QuantileFilter(HalfSpaceTrees), unsupervised"] = {
        **evaluate(frame[test], scores[test.to_numpy()], k), "events_per_s": len(frame) / seconds}
    print(f"  HST: {results['River QuantileFilter(HalfSpaceTrees), unsupervised']}", flush=True)

    # the dynamic threshold through an injected drift: the same replay with amounts x3 in the test week; the alert
    # rate per day over the last 14 days (base 0: only the quantile sets the threshold)
    both = frame.copy()
    both.loc[both["timestamp"] >= test_lo, "amount"] *= 3
    _, alerts, _ = stream_scores(both, preprocessing.StandardScaler() | linear_model.LogisticRegression(), delay,
                                 {"dynamic": True, "base": 0.0, "alert_rate": 0.01, "window": 5000})
    tail = both["timestamp"] >= test_hi - 14 * DAY
    days = ((both.loc[tail, "timestamp"] - (test_hi - 14 * DAY)) // DAY).astype(int)
    daily = pd.Series(alerts[tail.to_numpy()]).groupby(days.to_numpy()).mean()
    within = float(((daily >= 0.008) & (daily <= 0.012)).mean())
    results["dynamic threshold through drift"] = {"target_alert_rate": 0.01, "daily_alert_rate": daily.tolist(),
                                                  "share_of_days_within_20pct": within}
    print(f"  alert rate per day through the drift: {[round(v, 4) for v in daily]}; within +-20 %: {within:.0%}",
          flush=True)
    write_results(args, "fraud_detection.json", {
        "machine": describe(summary(threads=2)), "smoke": args.smoke, "transactions": len(frame),
        "fraud_share": float(frame["is_fraud"].mean()), "k": k, "train_week_start": str(train_start.date()),
        "features": [f if isinstance(f, str) else f.name for f in FEATURES], "results": results})


if __name__ == "__main__":
    main()
