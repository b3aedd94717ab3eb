"""The scaled-out pipeline on a real redis-server (Debian's, started here on 127.0.0.1): workers share the
partitions, a killed worker's events are taken over with none lost or counted twice, bad events become dead
letters, and a Redis that goes away gives a clear error."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("orjson")
if shutil.which("redis-server") is None:
    pytest.skip("redis-server not installed (Debian package redis-server; make install adds it)",
                allow_module_level=True)

from deepseek import DeepSeekError, InvalidArgumentError
from deepseek.stream import FeaturePipeline, handbook_features, simulate_transactions
from deepseek.stream.redis_server import LocalRedis
from deepseek.stream.redis_streams import RedisStreamConfig, counts, publish, read_outputs
from deepseek.stream.worker import StreamWorker

FEATURES = ["transaction_amount_std", "login_location_entropy", "device_fingerprint_match",
            {"name": "n_tx_1d", "agg": "count", "window": 86400},
            {"name": "amount_max_1d", "agg": "max", "field": "amount", "window": 86400}]


def make_pipeline() -> FeaturePipeline:
    return FeaturePipeline(window_size=3600, features=FEATURES, allowed_lateness=300)


@pytest.fixture(scope="module")
def server():
    with LocalRedis() as s:
        yield s


@pytest.fixture(scope="module")
def events():
    frame = simulate_transactions(150, 300, 12, seed=5).drop(columns=["datetime"])
    rows = frame.to_dict("records")
    for i in range(3, len(rows) - 1, 11):  # out of order within the lateness
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    return rows


@pytest.fixture(scope="module")
def expected(events):
    p = make_pipeline()
    return [p.process(e) for e in events]


_names = iter(range(10**6))


def config(server, **kw) -> RedisStreamConfig:
    return RedisStreamConfig(url=server.url, name=f"t{next(_names)}", **{"partitions": 4, "batch": 64,
                                                                        "lease_s": 0.6, **kw})


def check_exactly_once(cfg, events, expected) -> None:
    outputs = read_outputs(cfg)
    rows = [o["n"] for o in outputs]
    assert sorted(rows) == list(range(len(events))), "an event lost or counted twice"
    for o in outputs:
        want = expected[o["n"]]
        assert o["tx"] == events[o["n"]]["tx_id"]
        assert o["f"].keys() == want.keys()
        for k, v in want.items():
            assert math.isclose(o["f"][k], v, rel_tol=1e-9, abs_tol=1e-9), (o["n"], k, o["f"][k], v)


def test_two_workers_share_the_partitions_and_give_the_in_process_features(server, events, expected):
    cfg = config(server)
    publish(events, cfg, make_pipeline())
    workers = [StreamWorker(make_pipeline, cfg, name=n) for n in ("a", "b")]
    # both join before either works, so the split does not depend on how fast the first thread starts:
    # a alone takes all four, b sees two live workers, a gives back its upper half, b takes it
    for w in workers:
        w._connect()
    for w in (workers[0], workers[1], workers[0], workers[1]):
        w._heartbeat()
    assert sorted(len(w._parts) for w in workers) == [2, 2]
    threads = [threading.Thread(target=w.run, kwargs={"until_idle": 1.5}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check_exactly_once(cfg, events, expected)
    assert counts(cfg) == (len(events), 0)
    assert all(w.stats.applied > 0 for w in workers), [w.stats for w in workers]  # both did work


def test_a_worker_that_dies_before_committing_is_taken_over_with_nothing_lost_or_doubled(server, events, expected):
    cfg = config(server)
    publish(events, cfg, make_pipeline())
    a = StreamWorker(make_pipeline, cfg, name="a")

    class Crash(Exception):
        pass

    a._connect()
    a._heartbeat()  # alone: it owns every partition
    assert len(a._parts) == cfg.partitions
    for _ in range(5):  # commit a few batches, then die after reading and processing one
        a.step()
    commit = a._scripts["commit"]

    def die(*args, **kwargs):
        raise Crash

    a._scripts["commit"] = die
    with pytest.raises(Crash):
        a.step()
    a._scripts["commit"] = commit
    applied_by_a = len(read_outputs(cfg))
    assert 0 < applied_by_a < len(events)
    time.sleep(cfg.lease_s + 0.2)  # a's leases run out
    b = StreamWorker(make_pipeline, cfg, name="b")
    stats = b.run(until_idle=1.0)
    assert stats.claimed > 0  # a's read-but-uncommitted events
    check_exactly_once(cfg, events, expected)


def test_a_worker_taking_over_skips_events_already_applied(server, events, expected):
    """Pending events whose batch was committed (ack lost in flight) are not applied twice."""
    cfg = config(server, partitions=1)
    publish(events[:300], cfg, make_pipeline())
    a = StreamWorker(make_pipeline, cfg, name="a")
    a._connect()
    a._heartbeat()
    a.step()
    client = cfg.connect()
    # re-open the committed entries as pending for a, as if the ack had not been applied
    applied = client.hget(cfg.meta(0), "applied")
    done = client.xrange(cfg.stream(0), max=applied)
    client.xgroup_setid(cfg.stream(0), "workers", "0")
    client.xreadgroup("workers", "a", {cfg.stream(0): ">"}, count=len(done))
    a._parts.clear()  # a dies
    time.sleep(cfg.lease_s + 0.2)
    b = StreamWorker(make_pipeline, cfg, name="b")
    stats = b.run(until_idle=1.0)
    assert stats.duplicates == len(done) > 0
    check_exactly_once(cfg, events[:300], expected[:300])


@pytest.mark.slow
def test_killing_a_worker_process_loses_and_doubles_nothing(server, tmp_path):
    frame = simulate_transactions(2000, 3000, 10, seed=7).drop(columns=["datetime"])
    events = frame.to_dict("records")
    reference = FeaturePipeline()
    expected = [reference.process(e) for e in events]
    cfg = config(server, partitions=4, batch=128, lease_s=1.0)
    cmd = [sys.executable, "-m", "deepseek", "stream", "worker", "--redis", cfg.url, "--name", cfg.name,
           "--partitions", "4", "--batch", "128", "--lease", "1.0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env) for log in logs]
    try:
        client = cfg.connect()
        deadline = time.monotonic() + 120
        while client.zcard(cfg.workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        publish(events, cfg, FeaturePipeline())
        while counts(cfg)[0] < len(events) // 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        procs[0].send_signal(signal.SIGKILL)
        killed_at = counts(cfg)[0]
        assert killed_at < len(events), "finished before the kill: use more events"
        while counts(cfg)[0] < len(events) and time.monotonic() < deadline:
            assert procs[1].poll() is None, (tmp_path / "w1.log").read_text()
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(60) == 0, (tmp_path / "w1.log").read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    log = (tmp_path / "w1.log").read_text()
    assert "worker stopped" in log  # a graceful stop after the takeover
    check_exactly_once(cfg, events, expected)


def test_bad_events_become_dead_letters_and_the_rest_is_computed(server, events, expected):
    cfg = config(server, partitions=2)
    bad = [{**events[0], "amount": float("nan"), "tx_id": "nan"}, {**events[0], "amount": -5.0, "tx_id": "neg"},
           {k: v for k, v in events[0].items() if k != "timestamp"}, {**events[0], "amount": "12,5"}]
    good = events[:200]
    publish([*good[:100], *bad, *good[100:]], cfg, make_pipeline())
    StreamWorker(make_pipeline, cfg).run(until_idle=1.0)
    dead = read_outputs(cfg, dead=True)
    assert len(dead) == len(bad)
    reasons = " | ".join(d["reason"] for d in dead)
    assert "amount" in reasons and "timestamp" in reasons
    outputs = sorted(read_outputs(cfg), key=lambda o: o["n"])
    assert len(outputs) == len(good)
    for o, want in zip(outputs, expected[:200], strict=True):
        assert all(math.isclose(o["f"][k], v, rel_tol=1e-9, abs_tol=1e-9) for k, v in want.items())


def test_a_redis_that_goes_away_stops_the_worker_with_a_clear_error(events):
    with LocalRedis() as own:
        cfg = RedisStreamConfig(url=own.url, name="gone", partitions=2, lease_s=0.5, reconnect_s=1.0)
        publish(events[:100], cfg, make_pipeline())
        worker = StreamWorker(make_pipeline, cfg)
        errors: list[BaseException] = []

        def run():
            try:
                worker.run()
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        while worker.stats.applied < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        own.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], DeepSeekError), errors
    assert own.url in str(errors[0]) and "went away" in str(errors[0])


def test_what_cannot_be_partitioned_is_refused(server):
    cfg = config(server)
    with pytest.raises(InvalidArgumentError, match=r"delayed|window features only"):
        StreamWorker(lambda: FeaturePipeline(features=handbook_features()), cfg)
    two_keys = ["transaction_amount_std", {"name": "t_count", "agg": "count", "by": "terminal_id"}]
    with pytest.raises(InvalidArgumentError, match="one key"):
        StreamWorker(lambda: FeaturePipeline(features=two_keys), cfg)
    publish([], cfg, make_pipeline())
    with pytest.raises(InvalidArgumentError, match="name"):  # streams set up for other features
        StreamWorker(lambda: FeaturePipeline(features=["transaction_amount_std"]), cfg).run(until_idle=0.1)
    with pytest.raises(InvalidArgumentError, match="partitions"):
        RedisStreamConfig(url=server.url, partitions=0)
    with pytest.raises(InvalidArgumentError, match="url"):
        RedisStreamConfig(url="http://x")


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepseek", "stream", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_scale_writes_the_in_process_features_in_input_order(tmp_path):
    frame = simulate_transactions(300, 600, 5, seed=11)
    frame.to_parquet(tmp_path / "tx.parquet", index=False)
    (tmp_path / "stream.yaml").write_text("window_size: 3600\nfeatures: [transaction_amount_std, "
                                          "login_location_entropy, device_fingerprint_match]\n")
    done = _cli("scale", "tx.parquet", "--config", "stream.yaml", "--workers", "2", "--partitions", "4",
                "--output", "features.csv", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "events/s end to end" in done.stdout and "0 dead letters" in done.stdout
    import pandas as pd

    got = pd.read_csv(tmp_path / "features.csv")
    reference = FeaturePipeline()
    want = pd.DataFrame([reference.process(r) for r in frame.drop(columns=["datetime"]).to_dict("records")])
    assert got["tx_id"].tolist() == frame["tx_id"].tolist()
    assert ((got[want.columns] - want).abs().to_numpy() < 1e-9).all()
    bad = _cli("scale", "tx.parquet", "--output", "tx.parquet", cwd=tmp_path)
    assert bad.returncode == 2 and "--output" in bad.stderr and "Traceback" not in bad.stderr
