"""The Handbook-style transaction simulator: seeded, its fraud rules visible in the data, bad arguments refused."""

from __future__ import annotations

import pandas as pd
import pytest

import deepseek
from deepseek.stream import HANDBOOK_COLUMNS, simulate_transactions


@pytest.fixture(scope="module")
def frame():
    return simulate_transactions(n_customers=400, n_terminals=800, n_days=40, seed=7)


def test_same_seed_same_data_and_another_seed_differs(frame):
    pd.testing.assert_frame_equal(frame, simulate_transactions(n_customers=400, n_terminals=800, n_days=40, seed=7))
    assert not frame["amount"].equals(simulate_transactions(n_customers=400, n_terminals=800, n_days=40,
                                                            seed=8)["amount"])


def test_the_handbook_process_shows_in_the_data(frame):
    assert frame["timestamp"].is_monotonic_increasing and frame["tx_id"].tolist() == list(range(len(frame)))
    assert (frame["amount"] >= 0).all()
    assert frame["tx_time_days"].between(0, 39).all()
    assert ((frame["tx_time_seconds"] - frame["tx_time_days"] * 86400).between(1, 86399)).all()
    # scenario 1: amounts above 220 are frauds; no legitimate transaction is above 220
    assert (frame.loc[frame["fraud_scenario"] == 1, "amount"] > 220).all()
    assert (frame.loc[~frame["is_fraud"], "amount"] <= 220).all()
    assert set(frame["fraud_scenario"].unique()) == {0, 1, 2, 3}
    assert frame["is_fraud"].equals(frame["fraud_scenario"] > 0)
    # scenario 2: a compromised terminal's frauds span at most 28 + 27 days of draws; every day draws 2 terminals
    per_day = frame[frame["fraud_scenario"] == 2].groupby("terminal_id")["tx_time_days"].agg(["min", "max"])
    assert ((per_day["max"] - per_day["min"]) < 28 + 40).all()
    # scenario 3 (stolen credentials) mostly comes from unseen devices, an addition of ours
    stolen = frame[frame["fraud_scenario"] == 3]
    assert stolen["device_fingerprint"].str.startswith("unseen-").mean() > 0.5
    assert not frame.loc[~frame["is_fraud"], "device_fingerprint"].str.startswith("unseen-").any()
    # 2 terminals a day stay compromised 28 days: up to ~56 of these 800 terminals (7 %) at once
    assert 0.002 < frame["is_fraud"].mean() < 0.12
    assert set(HANDBOOK_COLUMNS) <= set(frame.columns)


@pytest.mark.parametrize("kwargs, match", [({"n_customers": 0}, "n_customers"), ({"n_days": 2.5}, "n_days"),
                                           ({"radius": -1}, "radius"), ({"start_date": "someday"}, "start_date"),
                                           ({"stolen_device_share": 2}, "stolen_device_share")])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(deepseek.InvalidArgumentError, match=match):
        simulate_transactions(**kwargs)
