"""A pipeline's state saves to JSON and a restarted pipeline resumes from it with the features it would have given."""

from __future__ import annotations

import json
import math

import pytest

from deepseek import InvalidArgumentError
from deepseek.stream import FeaturePipeline, handbook_features, simulate_transactions

FEATURES = [*handbook_features(), "transaction_amount_std", "login_location_entropy", "device_fingerprint_match",
            {"name": "amount_max_1h", "agg": "max", "field": "amount"},
            {"name": "amount_min_1h", "agg": "min", "field": "amount"}]


@pytest.fixture(scope="module")
def events():
    frame = simulate_transactions(120, 300, 30, seed=3)
    rows = frame.drop(columns=["datetime"]).to_dict("records")
    for i in range(len(rows)):  # a bounded shuffle: out-of-order events within the lateness
        if i % 7 == 3 and i + 1 < len(rows):
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
    return rows


def _pipeline() -> FeaturePipeline:
    return FeaturePipeline(window_size=3600, features=FEATURES, allowed_lateness=600)


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9) for k in a)


def test_a_restarted_pipeline_gives_the_features_of_an_uninterrupted_one(events, tmp_path):
    whole = _pipeline()
    half = len(events) // 2
    expected = []
    for n, e in enumerate(events):
        expected.append(whole.process(e))
        if n % 50 == 0:
            whole.label(e["tx_id"], e["is_fraud"])
    first = _pipeline()
    for n, e in enumerate(events[:half]):
        first.process(e)
        if n % 50 == 0:
            first.label(e["tx_id"], e["is_fraud"])
    path = first.save_state(tmp_path / "state.json")
    json.loads(path.read_text())  # plain JSON
    resumed = _pipeline().load_state(path)
    assert resumed.counters == first.counters and resumed.watermark == first.watermark
    assert resumed.state_size()["events"] == first.state_size()["events"]
    for n, e in enumerate(events[half:], start=half):
        got = resumed.process(e)
        if n % 50 == 0:
            resumed.label(e["tx_id"], e["is_fraud"])
        assert _close(got, expected[n]), n
    assert resumed.counters == whole.counters
    assert resumed.counters["out_of_order"] > 0  # the shuffle exercised the out-of-order path


def test_state_refuses_another_spec_and_bad_files(events, tmp_path):
    p = _pipeline()
    for e in events[:200]:
        p.process(e)
    path = p.save_state(tmp_path / "s.json")
    other = FeaturePipeline(window_size=7200, features=FEATURES, allowed_lateness=600)
    with pytest.raises(InvalidArgumentError, match="window_size"):
        other.load_state(path)
    with pytest.raises(InvalidArgumentError, match="path"):
        _pipeline().load_state(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        _pipeline().load_state(tmp_path / "bad.json")
    state = p.state_dict()
    del state["windows"]
    fresh = _pipeline()
    with pytest.raises(InvalidArgumentError, match="malformed"):
        fresh.load_state_dict(state)
    assert fresh.state_size()["keys"] == 0  # a refused state leaves the pipeline as it was


def test_a_state_json_cannot_hold_is_refused_and_nothing_is_written(tmp_path):
    import datetime as dt

    p = FeaturePipeline(features=[{"name": "n_loc", "agg": "distinct", "field": "location"}])
    p.process({"user_id": "u", "timestamp": 0, "location": dt.date(2020, 1, 1)})
    with pytest.raises(InvalidArgumentError, match="JSON"):
        p.save_state(tmp_path / "s.json")
    assert not list(tmp_path.iterdir())
