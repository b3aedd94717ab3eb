"""FeaturePipeline against a brute-force oracle written from the definitions, in float64."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import deepseek
from deepseek.stream import AGGREGATIONS, Feature, FeaturePipeline

W = 3600.0
ALL = [Feature(f"{agg}_{field or 'x'}", agg, field) for agg, field in
       [("count", None), ("time_since_last", None), ("value", "amount"), ("sum", "amount"), ("mean", "amount"), ("std", "amount"),
        ("min", "amount"), ("max", "amount"), ("ratio_to_mean", "amount"), ("distinct", "location"),
        ("entropy", "location"), ("seen_before", "device_fingerprint")]]
ALL.append(Feature("std1_amount", "std", "amount", ddof=1))
ALL.append(Feature("terminal_count_short", "count", by="terminal_id", window=900))


def make_events(n: int, seed: int, users: int = 5, spread: float = 120.0) -> list[dict]:
    rng = random.Random(seed)
    t = 1_700_000_000.0
    out = []
    for i in range(n):
        t += rng.expovariate(1 / spread)
        out.append({"tx_id": i, "user_id": f"u{rng.randrange(users)}", "timestamp": t,
                    "amount": round(rng.lognormvariate(3, 1), 2), "location": rng.choice("ABCD"),
                    "device_fingerprint": rng.choice(["d1", "d2", "d3"]), "terminal_id": rng.randrange(3)})
    return out


def oracle(arrived: list[dict], feature: Feature, window: float) -> list[float]:
    """Each event's feature over the events of its key that arrived before it with time in (t - W, t], and itself."""
    out = []
    for k, e in enumerate(arrived):
        t, key = e["timestamp"], e[feature.by]
        prior = [p for p in arrived[:k] if p[feature.by] == key and t - window < p["timestamp"] <= t]
        members = [*prior, e]
        agg = feature.agg
        if agg == "count":
            out.append(float(len(members)))
        elif agg == "time_since_last":
            out.append(t - max(p["timestamp"] for p in prior) if prior else window)
        elif agg == "seen_before":
            out.append(float(any(p[feature.field] == e[feature.field] for p in prior)))
        elif agg == "distinct":
            out.append(float(len({m[feature.field] for m in members})))
        elif agg == "entropy":
            counts = np.array(list(Counter(m[feature.field] for m in members).values()), dtype=np.float64)
            p = counts / counts.sum()
            out.append(float(-(p * np.log2(p)).sum()) if len(members) > 1 else 0.0)
        else:
            xs = np.array([m[feature.field] for m in members], dtype=np.float64)
            if agg == "value":
                out.append(float(e[feature.field]))
            elif agg == "sum":
                out.append(float(xs.sum()))
            elif agg == "mean":
                out.append(float(xs.mean()))
            elif agg == "std":
                out.append(float(xs.std(ddof=feature.ddof)) if len(xs) > feature.ddof else 0.0)
            elif agg == "min":
                out.append(float(xs.min()))
            elif agg == "max":
                out.append(float(xs.max()))
            else:
                out.append(float(e[feature.field] / xs.mean()))
    return out


def check(got: list[dict], arrived: list[dict], features: list[Feature]) -> None:
    for f in features:
        want = oracle(arrived, f, f.window or W)
        have = [g[f.name] for g in got]
        # float64 running sums over at most a few hundred values of magnitude <= 1e4
        np.testing.assert_allclose(have, want, rtol=1e-9, atol=1e-9, err_msg=f.name)


def test_every_aggregation_equals_the_definition_on_an_ordered_stream():
    assert {f.agg for f in ALL} == set(AGGREGATIONS) - {"delayed_count", "risk"}  # those: their own test
    events = make_events(600, seed=1)
    pipeline = FeaturePipeline(window_size=W, features=ALL)
    got = [pipeline.process(e) for e in events]
    check(got, events, ALL)
    assert pipeline.counters["out_of_order"] == 0 and pipeline.counters["late"] == 0


def test_out_of_order_events_within_the_lateness_get_their_own_window_exactly():
    events = make_events(500, seed=2)
    rng = random.Random(3)
    # arrival = event time + a delay of up to 600 s: a bounded disorder the watermark (lateness 600 s) covers
    arrived = sorted(events, key=lambda e: e["timestamp"] + rng.uniform(0, 600))
    pipeline = FeaturePipeline(window_size=W, features=ALL, allowed_lateness=600)
    got = [pipeline.process(e) for e in arrived]
    assert pipeline.counters["out_of_order"] > 50 and pipeline.counters["late"] == 0
    check(got, arrived, ALL)


def test_spec_features_and_backfill_give_the_same_numbers_as_process():
    events = make_events(300, seed=4)
    frame = pd.DataFrame(events)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s")  # datetimes work as well as epoch seconds
    live = FeaturePipeline(window_size=3600, online_learning=True)
    served = pd.DataFrame([live.process(e) for e in events])
    history = FeaturePipeline(window_size=3600, online_learning=True).backfill(frame)
    assert list(history.columns) == ["transaction_amount_std", "login_location_entropy", "device_fingerprint_match",
                                     "late"]
    pd.testing.assert_frame_equal(history.drop(columns="late"), served, check_exact=True)
    check(served.to_dict("records"), events, [deepseek.stream.NAMED[n] for n in served.columns])


def test_variance_stays_exact_for_large_amounts_over_many_evictions():
    rng = np.random.default_rng(0)
    n = 5000
    times = np.arange(n, dtype=np.float64)
    amounts = 1e6 + rng.standard_normal(n)  # a naive sum of squares would lose ~1e-4 of the variance here
    pipeline = FeaturePipeline(window_size=100, features=["transaction_amount_std"])
    got = np.array([pipeline.process({"user_id": 1, "timestamp": t, "amount": a})["transaction_amount_std"]
                    for t, a in zip(times, amounts)])
    want = np.array([amounts[max(0, i - 99): i + 1].std() for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_late_events_are_updated_dropped_or_set_aside_and_counted():
    base = {"user_id": "u", "amount": 1.0, "location": "A", "device_fingerprint": "d"}
    stream = [{**base, "timestamp": t, "tx_id": i} for i, t in enumerate([1000, 2000, 3000, 1500, 2990])]
    for policy in ("update", "drop", "side"):
        pipeline = FeaturePipeline(window_size=3600, allowed_lateness=100, late_policy=policy)
        out = [pipeline.process(e) for e in stream]
        assert pipeline.counters["late"] == 1  # 1500 is behind the watermark 2900; 2990 is not
        assert pipeline.counters["out_of_order"] == 1
        if policy == "update":
            assert out[3] is not None and pipeline.counters["late_updated"] == 1
        else:
            assert out[3] is None
        if policy == "side":
            assert [e["tx_id"] for e in pipeline.side_output] == [3]
    frame = FeaturePipeline(window_size=3600, allowed_lateness=100, late_policy="drop").backfill(pd.DataFrame(stream))
    assert frame["late"].tolist() == [False, False, False, True, False]
    assert math.isnan(frame.loc[3, "transaction_amount_std"])


def test_state_is_bounded_by_ttl_and_max_keys():
    pipeline = FeaturePipeline(window_size=60, features=["transaction_count"])
    for i in range(5000):  # a new user every second: only the last ~60 s of users can matter
        pipeline.process({"user_id": i, "timestamp": float(i)})
    size = pipeline.state_size()
    assert size["keys"] <= 60 + 1024 and pipeline.counters["keys_expired"] > 3000
    assert size["bytes"] > 0
    capped = FeaturePipeline(window_size=3600, features=["transaction_count"], max_keys=10)
    for i in range(100):
        capped.process({"user_id": i % 20, "timestamp": float(i)})
    assert capped.state_size()["keys"] == 10 and capped.counters["keys_evicted"] == 90


def test_fields_can_be_renamed():
    pipeline = FeaturePipeline(window_size=10, features=["transaction_count", "transaction_amount_mean"],
                               fields={"user_id": "customer", "timestamp": "ts", "amount": "value"})
    pipeline.process({"customer": "a", "ts": dt.datetime(2026, 1, 1, 0, 0, 0), "value": 2})
    out = pipeline.process({"customer": "a", "ts": dt.datetime(2026, 1, 1, 0, 0, 5), "value": 4})
    assert out == {"transaction_count": 2.0, "transaction_amount_mean": 3.0}


def test_handbook_customer_features_cover_three_windows():
    pipeline = FeaturePipeline(features=deepseek.stream.handbook_features())
    day = 86400.0
    for t, amount in [(0, 10), (0.5 * day, 20), (3 * day, 30), (20 * day, 40)]:
        out = pipeline.process({"user_id": "c", "terminal_id": 1, "timestamp": t, "amount": amount})
    assert out["customer_id_nb_tx_1day_window"] == 1 and out["customer_id_nb_tx_30day_window"] == 4
    assert out["customer_id_avg_amount_30day_window"] == 25.0 and out["customer_id_avg_amount_7day_window"] == 40
    # the terminal's window ending 7 days ago holds the first three transactions, none labelled fraud
    assert out["terminal_id_nb_tx_30day_window"] == 3 and out["terminal_id_risk_30day_window"] == 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"window_size": 0}, "window_size"),
    ({"window_size": float("inf")}, "window_size"),
    ({"features": ["no_such_feature"]}, "features"),
    ({"features": []}, "features"),
    ({"features": [{"name": "x", "agg": "median", "field": "amount"}]}, "agg"),
    ({"features": [{"name": "x", "agg": "std"}]}, "field"),
    ({"features": ["transaction_count", "transaction_count"]}, "distinct"),
    ({"late_policy": "ignore"}, "late_policy"),
    ({"allowed_lateness": -1}, "allowed_lateness"),
    ({"fields": {"userid": "u"}}, "fields"),
    ({"max_keys": 0}, "max_keys"),
])
def test_bad_configuration_is_refused_naming_the_argument(kwargs, match):
    with pytest.raises(deepseek.InvalidArgumentError, match=match):
        FeaturePipeline(**kwargs)


def test_bad_events_are_refused_naming_the_column_and_leave_state_untouched():
    pipeline = FeaturePipeline(window_size=60)
    good = {"user_id": "u", "timestamp": 1.0, "amount": 5.0, "location": "A", "device_fingerprint": "d"}
    pipeline.process(good)
    for bad, match in [({k: v for k, v in good.items() if k != "amount"}, "'amount'"),
                       ({**good, "amount": "five"}, "'amount'"), ({**good, "amount": float("nan")}, "'amount'"),
                       ({**good, "amount": -3.0}, "'amount'.*>= 0"),
                       ({**good, "timestamp": "yesterday"}, "'timestamp'"), ({**good, "user_id": None}, "'user_id'")]:
        with pytest.raises(deepseek.InvalidArgumentError, match=match):
            pipeline.process(bad)
    assert pipeline.state_size()["events"] == 1
    with pytest.raises(deepseek.InvalidArgumentError, match="frame"):
        pipeline.backfill(pd.DataFrame({"user_id": ["u"], "timestamp": [2.0]}))


def test_delayed_risk_counts_the_labelled_frauds_of_the_window_that_ended_delay_ago():
    day = 86400.0
    risk = Feature("risk_7d", "risk", by="terminal_id", window=7 * day, delay=7 * day)
    count = Feature("nb_7d", "delayed_count", by="terminal_id", window=7 * day, delay=7 * day)
    pipeline = FeaturePipeline(features=[risk, count, "transaction_count"])
    rng = random.Random(5)
    events, labels = [], {}
    for i in range(400):
        e = {"tx_id": i, "user_id": rng.randrange(5), "terminal_id": rng.randrange(3), "timestamp": i * 0.2 * day}
        got = pipeline.process(e)
        t = e["timestamp"]
        prior = [p for p in events if p["terminal_id"] == e["terminal_id"] and t - 14 * day < p["timestamp"] <= t - 7 * day]
        known = [p for p in prior if labels.get(p["tx_id"])]
        assert got["nb_7d"] == len(prior)
        assert got["risk_7d"] == (len(known) / len(prior) if prior else 0.0)
        events.append(e)
        # each label arrives 3 days after its transaction
        for p in events:
            if p["tx_id"] not in labels and p["timestamp"] <= t - 3 * day:
                labels[p["tx_id"]] = rng.random() < 0.3
                pipeline.label(p["tx_id"], labels[p["tx_id"]])
    assert any(v for v in labels.values())
    with pytest.raises(deepseek.InvalidArgumentError, match="delay"):
        Feature("x", "mean", "amount", delay=10)
    with pytest.raises(deepseek.InvalidArgumentError, match="label"):
        pipeline.label(1, "yes")
