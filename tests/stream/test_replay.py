"""`deepseek stream replay` / `simulate`: delayed labels, the report's figures, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import deepseek
from deepseek.stream import simulate_transactions
from deepseek.stream.config import StreamConfig
from deepseek.stream.replay import replay
from deepseek.stream.report import card_precision_at_k

pytest.importorskip("river")
DAY = 86400.0


@pytest.fixture(scope="module")
def transactions(tmp_path_factory):
    frame = simulate_transactions(n_customers=120, n_terminals=240, n_days=12, seed=3)
    path = tmp_path_factory.mktemp("tx") / "tx.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_labels_reach_the_model_only_after_the_delay(transactions):
    frame, _ = transactions
    span = frame["timestamp"].iloc[-1] - frame["timestamp"].iloc[0]
    never = replay(frame, StreamConfig(label_column="is_fraud", label_delay=span + 1))
    assert never.counters["learned"] == 0
    daily = replay(frame, StreamConfig(label_column="is_fraud", label_delay=DAY))
    released = int((frame["timestamp"] + DAY <= frame["timestamp"].iloc[-1]).sum())
    assert daily.counters["learned"] == released  # every label whose time has come, no other
    assert len(daily.decisions) == len(frame) and daily.decisions["score"].between(0, 1).all()


def test_card_precision_at_k_follows_its_definition():
    decisions = pd.DataFrame({"time": [0, 10, 20, 30, DAY + 1, DAY + 2],
                              "key": ["a", "a", "b", "c", "a", "b"],
                              "score": [0.9, 0.1, 0.8, 0.2, 0.3, 0.7],
                              "label": [False, True, False, True, True, False]})
    cp = card_precision_at_k(decisions, 2)
    # day 0: cards by max score a (0.9, has a fraud), b (0.8, none) -> 1/2; day 1: b (0.7, none), a (0.3, fraud) -> 1/2
    assert cp["card_precision_at_2"].tolist() == [0.5, 0.5]
    assert card_precision_at_k(decisions, 1)["card_precision_at_1"].tolist() == [1.0, 0.0]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "deepseek", "stream", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_replay_writes_the_report(transactions, tmp_path):
    _, path = transactions
    config = tmp_path / "stream.yaml"
    config.write_text("features: [transaction_amount_std, login_location_entropy, device_fingerprint_match,\n"
                      "           amount_to_mean_ratio]\nwindow_size: 86400\nlabel_column: is_fraud\n"
                      "label_delay: 86400\nthreshold: {dynamic: true, base: 0.5, alert_rate: 0.02}\n")
    before = path.read_bytes()
    done = run_cli("replay", str(path), "--config", str(config), "--report", str(tmp_path / "out"), "--quiet",
                   "--k", "10")
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == before
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("precision", "recall", "f1", "average_precision", "card_precision_at_10_mean", "alert_rate"):
        assert 0.0 <= report[key] <= 1.0
    assert report["latency_us"]["p99"] >= report["latency_us"]["p50"] > 0
    daily = pd.read_csv(tmp_path / "out" / "daily.csv")
    assert len(daily) == 12 and daily["events"].sum() == report["scored"]
    for png in ("scores.png", "precision_recall.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_simulate_writes_parquet(tmp_path):
    done = run_cli("simulate", str(tmp_path / "tx.parquet"), "--customers", "30", "--terminals", "60", "--days", "3")
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "tx.parquet")) > 0


@pytest.mark.parametrize("setup, match", [
    (lambda tmp: ("missing.csv", None), "transactions"),
    (lambda tmp: (tmp.joinpath("tx.txt").write_text("a,b\n") and "tx.txt", None), "transactions"),
    (lambda tmp: (tmp.joinpath("bad.parquet").write_bytes(b"not parquet") and "bad.parquet", None), "transactions"),
    (lambda tmp: ("tx.csv", "model: deep_forest\n"), "model"),
    (lambda tmp: ("tx.csv", "label_column: no_such_column\n"), "label_column"),
    (lambda tmp: ("tx.csv", "threshold: {base: 2}\n"), "base"),
    (lambda tmp: ("tx.csv", "windowsize: 10\n"), "config"),
])
def test_bad_input_is_one_clear_line_and_writes_no_report(setup, match, tmp_path, transactions):
    frame, _ = transactions
    frame.head(50).to_csv(tmp_path / "tx.csv", index=False)
    name, config = setup(tmp_path)
    args = ["replay", str(tmp_path / name), "--report", str(tmp_path / "out"), "--quiet"]
    if config is not None:
        (tmp_path / "stream.yaml").write_text(config)
        args += ["--config", str(tmp_path / "stream.yaml")]
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_config_round_trips_and_refuses_bad_values():
    config = StreamConfig(features=["transaction_count"], label_column="is_fraud", label_delay=3600)
    assert StreamConfig.from_dict(config.to_dict()) == config
    with pytest.raises(deepseek.InvalidArgumentError, match="label_delay"):
        StreamConfig(label_delay=-1)
    with pytest.raises(deepseek.InvalidArgumentError, match="threshold"):
        StreamConfig(threshold={"base": 0.5, "speed": 2})
