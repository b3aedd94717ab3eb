"""Bad input to ``deepseek stream`` and its Python API: one clear line naming the flag or argument, exit 2, the
inputs untouched and no output left behind (issue 28). No Redis server is needed: the unreachable-Redis cases
use a port nobody listens on."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pytest

from _refusals import refused, snapshot
from deepseek import InvalidArgumentError
from deepseek.cli import _run
from deepseek.stream import (
    FeaturePipeline,
    RedisStreamConfig,
    RiskEngine,
    StreamWorker,
    ThresholdPolicy,
    scale_file,
    simulate_transactions,
)
from deepseek.stream.config import StreamConfig
from deepseek.stream.replay import replay


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def frame():
    return simulate_transactions(20, 20, 3, seed=1)


@pytest.fixture
def folder(tmp_path, monkeypatch, frame):
    monkeypatch.chdir(tmp_path)
    frame.to_csv(tmp_path / "tx.csv", index=False)
    (tmp_path / "a.csv").write_text("content,n\nhello,1\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x01" * 64)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not parquet")
    (tmp_path / "tx.txt").write_text("a,b\n1,2\n")
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "dir").mkdir()
    configs = {"neg.yaml": "window_size: -1\n", "feat.yaml": "features: [[1]]\n", "keys.yaml": "1: 2\nfoo: 3\n",
               "version.yaml": "_version: x\n", "thr.yaml": "threshold: [1]\n", "base.yaml": "threshold: {base: 2}\n",
               "fields.yaml": "fields: {user_id: [1]}\n", "label.yaml": "label_column: nosuch\n",
               "list.yaml": "- window_size\n", "model.yaml": "model: deep_forest\n",
               "handbook.yaml": "features: [handbook]\n", "lateness.yaml": "allowed_lateness: .nan\n"}
    for name, text in configs.items():
        (tmp_path / name).write_text(text)
    return tmp_path


REPLAY = ["stream", "replay", "tx.csv", "--report", "rep", "--quiet"]
SCALE = ["stream", "scale", "tx.csv", "--quiet"]

CASES = [
    # outputs that would replace an input or go where they cannot
    (["stream", "simulate", "tx.csv", "--customers", "5", "--terminals", "5", "--days", "1"], "OUTPUT"),
    (["stream", "simulate", "out.txt", "--customers", "5", "--terminals", "5", "--days", "1"], "OUTPUT"),
    (["stream", "simulate", "dir", "--customers", "5", "--terminals", "5", "--days", "1"], "OUTPUT"),
    (["stream", "simulate", "/proc/no/such/x.csv", "--customers", "5", "--terminals", "5", "--days", "1"], "OUTPUT"),
    (["stream", "replay", "tx.csv", "--report", "tx.csv", "--quiet"], "--report"),
    (["stream", "replay", "tx.csv", "--report", "a.csv", "--quiet"], "--report"),
    (["stream", "replay", "tx.csv", "--report", "rep", "--config", "rep", "--quiet"], "--config"),
    ([*SCALE, "--output", "tx.csv"], "--output"),
    ([*SCALE, "--output", "out.txt"], "--output"),
    ([*SCALE, "--output", "dir"], "--output"),
    # flags
    (["stream", "simulate", "out.csv", "--seed", "-1"], "--seed"),
    (["stream", "simulate", "out.csv", "--customers", "0"], "--customers"),
    (["stream", "simulate", "out.csv", "--days", "-3"], "--days"),
    ([*REPLAY, "--limit", "0"], "--limit"),
    ([*REPLAY, "--k", "-1"], "--k"),
    ([*SCALE, "--output", "out.parquet", "--workers", "3", "--partitions", "2"], "--partitions"),
    ([*SCALE, "--output", "out.parquet", "--workers", "0"], "--workers"),
    ([*SCALE, "--output", "out.parquet", "--lease", "0"], "--lease"),
    ([*SCALE, "--output", "out.parquet", "--lease", "nan"], "--lease"),
    ([*SCALE, "--output", "out.parquet", "--batch", "5000"], "--batch"),
    ([*SCALE, "--output", "out.parquet", "--name", "a:b"], "--name"),
    ([*SCALE, "--output", "out.parquet", "--redis", "redis://127.0.0.1:{port}/0"], "--redis"),
    ([*SCALE, "--output", "out.parquet", "--redis", "http://127.0.0.1:6379"], "--redis"),
    (["stream", "worker", "--redis", "redis://127.0.0.1:{port}/0"], "--redis"),
    (["stream", "worker", "--redis", "redis://127.0.0.1:abc"], "--redis"),
    (["stream", "worker", "--redis", "redis://127.0.0.1:6379/x"], "--redis"),
    (["stream", "publish", "tx.csv", "--redis", "redis://127.0.0.1:{port}"], "--redis"),
    (["stream", "worker", "--redis", "redis://127.0.0.1:{port}", "--config", "handbook.yaml"], "features"),
    ([*SCALE, "--output", "out.parquet", "--config", "bin.yaml"], "--config"),
    # config files
    *[([*REPLAY, "--config", name], flag) for name, flag in (
        ("bin.yaml", "--config"), ("none.yaml", "--config"), ("list.yaml", "--config"), ("neg.yaml", "window_size"),
        ("feat.yaml", "features"), ("keys.yaml", "--config"), ("version.yaml", "_version"), ("thr.yaml", "threshold"),
        ("base.yaml", "base"), ("fields.yaml", "fields.user_id"), ("label.yaml", "label_column"),
        ("model.yaml", "model"), ("lateness.yaml", "allowed_lateness"))],
    # transactions files
    *[(["stream", "replay", name, "--report", "rep", "--quiet"], "transactions")
      for name in ("a.csv", "empty.csv", "bin.csv", "bad.parquet", "tx.txt", "none.csv", "dir")],
]


@pytest.mark.parametrize("argv, flag", CASES, ids=[" ".join(c[0][1:]) for c in CASES])
def test_cli_bad_input_is_one_line_naming_the_flag(argv, flag, folder, capsys):
    port = str(_free_port())
    argv = [a.replace("{port}", port) for a in argv]
    started = time.monotonic()
    refused(argv, capsys, flag, unchanged=folder)  # inputs unchanged, no output created
    assert time.monotonic() - started < 30  # fails fast: no hanging on an unreachable Redis


def test_the_value_shown_is_the_path_and_a_simulated_file_is_never_replaced_silently(folder, capsys):
    before = (folder / "tx.csv").read_bytes()
    assert _run(["stream", "simulate", "tx.csv", "--customers", "5", "--terminals", "5", "--days", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (folder / "tx.csv").read_bytes() == before
    assert _run(["stream", "simulate", "tx.csv", "--customers", "5", "--terminals", "5", "--days", "2",
                 "--overwrite"]) == 0
    assert _run(["stream", "replay", "tx.csv", "--report", "/proc/no/such", "--quiet"]) == 2
    assert "got '/proc/no/such'" in capsys.readouterr().err


def _state(folder: Path, text: str | bytes) -> Path:
    path = folder / "state.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


API_CASES = [
    (lambda f: FeaturePipeline(window_size=0), "window_size"),
    (lambda f: FeaturePipeline(window_size=math.inf), "window_size"),
    (lambda f: FeaturePipeline(features=[]), "features"),
    (lambda f: FeaturePipeline(features=["nosuch"]), "features"),
    (lambda f: FeaturePipeline(features=[{"name": "x", "agg": "count", "window": -1}]), "window"),
    (lambda f: FeaturePipeline(fields={"nosuch": "x"}), "fields"),
    (lambda f: FeaturePipeline(ttl=math.nan), "ttl"),
    (lambda f: FeaturePipeline(side_output_limit=-1), "side_output_limit"),
    (lambda f: FeaturePipeline(allowed_lateness=-1), "allowed_lateness"),
    (lambda f: FeaturePipeline(late_policy="later"), "late_policy"),
    (lambda f: FeaturePipeline().load_state(_state(f, bytes(range(256)))), "state.json"),
    (lambda f: FeaturePipeline().load_state(_state(f, "{not json")), "state.json"),
    (lambda f: FeaturePipeline().load_state(_state(f, "[1, 2]")), "state.json"),
    (lambda f: FeaturePipeline().load_state(_state(f, '{"format": "x"}')), "state.json"),
    (lambda f: FeaturePipeline().load_state(_state(f, json.dumps({**FeaturePipeline().state_dict(), "windows": 5}))),
     "state.json"),
    (lambda f: FeaturePipeline().load_state(_state(f, json.dumps({**FeaturePipeline().state_dict(), "spec": [1]}))),
     "state.json"),
    (lambda f: FeaturePipeline().load_state(f / "dir"), "path"),
    (lambda f: FeaturePipeline().save_state(f / "dir"), "path"),
    (lambda f: FeaturePipeline().load_state(f / "tx.csv"), "path"),
    (lambda f: RiskEngine(top_k=-1), "top_k"),
    (lambda f: RiskEngine(model=object()), "model"),
    (lambda f: RiskEngine(pending_limit=0), "pending_limit"),
    (lambda f: RiskEngine().set_threshold(base=2), "base"),
    (lambda f: RiskEngine().set_threshold(dynamic=True, alert_rate=0), "alert_rate"),
    (lambda f: ThresholdPolicy(base=math.nan), "base"),
    (lambda f: StreamConfig(model="x"), "model"),
    (lambda f: StreamConfig(threshold={1: 2, "x": 3}), "threshold"),
    (lambda f: StreamConfig.from_yaml(f / "bin.yaml"), "path"),
    (lambda f: StreamConfig.from_yaml(f / "keys.yaml"), "keys.yaml"),
    (lambda f: StreamConfig.from_yaml(f / "neg.yaml"), "window_size"),
    (lambda f: RedisStreamConfig(url="http://x"), "url"),
    (lambda f: RedisStreamConfig(partitions=0), "partitions"),
    (lambda f: StreamWorker(FeaturePipeline, RedisStreamConfig(url=f"redis://127.0.0.1:{_free_port()}/0")).run(
        until_idle=0.1), "config.url"),
    (lambda f: StreamWorker(5, RedisStreamConfig()), "pipeline_factory"),
    (lambda f: scale_file(f / "tx.csv", f / "tx.csv"), "output"),
    (lambda f: scale_file(f / "tx.csv", f / "out.parquet", workers=3, partitions=2), "partitions"),
    (lambda f: scale_file(f / "tx.csv", f / "out.parquet", workers=0), "workers"),
    (lambda f: scale_file(f / "tx.csv", f / "out.parquet", url=f"redis://127.0.0.1:{_free_port()}"), "url"),
    (lambda f: scale_file(f / "tx.csv", f / "out.parquet", config_path=f / "bin.yaml"), "config_path"),
    (lambda f: simulate_transactions(seed=-1), "seed"),
    (lambda f: simulate_transactions(start_date=None), "start_date"),
    (lambda f: replay(f / "tx.csv", limit=0), "limit"),
    (lambda f: replay(f / "a.csv"), "transactions"),
    (lambda f: replay(f / "tx.csv", config={"model": "x"}), "config"),
]


@pytest.mark.parametrize("call, argument", API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_python_api_bad_input_names_the_argument(call, argument, folder):
    state = folder / "state.json"
    before = snapshot(folder)
    with pytest.raises(InvalidArgumentError, match=argument):
        call(folder)
    after = snapshot(folder)
    if state.exists() and "state.json" not in before:  # the case wrote its own input file
        before["state.json"] = after["state.json"]
    assert after == before
