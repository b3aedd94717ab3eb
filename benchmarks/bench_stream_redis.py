"""The scaled-out pipeline over Redis Streams: events/s with 1 and 2 worker processes, against the in-process
pipeline on the same events, one run.

    python benchmarks/bench_stream_redis.py [--events 200000] [--partitions 8] [--smoke]

The stream: the first ``--events`` transactions of ``deepseek.stream.simulate_transactions(seed=0)`` (the
Handbook's generation process; synthetic). Features: the three fraud features (transaction_amount_std,
login_location_entropy, device_fingerprint_match; 1-hour windows by user). Redis: Debian's redis-server
started on 127.0.0.1 by this script (no persistence), everything on this one machine — the workers, Redis and
the publisher share its cores.

Rows, each on fresh streams:
- in-process: one ``FeaturePipeline.process`` loop over the events (the baseline; no Redis, no JSON).
- drain, N workers: the events are published first; N ``deepseek stream worker`` processes then compute them;
  events/s from the first output to the last (Redis' own clock: the output entries' ids).
- end to end, N workers: the workers are up and waiting; the publisher appends the events as fast as it can
  while they work; events/s from the first event in to the last output out.
Every Redis row checks that each event gave exactly one output and that the features equal the in-process ones.
Writes benchmarks/results/stream_redis.json. ``--smoke``: 3,000 events of a small simulation, 4 partitions. Exits
77 (skipped) when redis-server is not installed.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from _common import add_smoke_flag, write_results
from deepseek._core.machine import describe, summary
from deepseek.stream import (
    FeaturePipeline,
    LocalRedis,
    RedisStreamConfig,
    publish,
    read_outputs,
    simulate_transactions,
)
from deepseek.stream.redis_streams import counts

SKIPPED = 77  # tests/test_benchmarks_smoke.py: a dependency is missing


def simulate(n: int, smoke: bool) -> list[dict[str, Any]]:
    frame = (simulate_transactions(n_customers=200, n_terminals=400, n_days=10, seed=0) if smoke
             else simulate_transactions(seed=0))
    columns = ["tx_id", "user_id", "timestamp", "amount", "location", "device_fingerprint", "terminal_id"]
    return frame[columns].head(n).to_dict("records")


def in_process(events: list[dict[str, Any]]) -> tuple[float, list[dict[str, float]]]:
    pipeline = FeaturePipeline(window_size=3600)
    t0 = time.perf_counter()
    out = [pipeline.process(e) for e in events]
    return len(events) / (time.perf_counter() - t0), out


def start_workers(cfg: RedisStreamConfig, n: int) -> list[subprocess.Popen]:
    cmd = [sys.executable, "-m", "deepseek", "stream", "worker", "--redis", cfg.url, "--name", cfg.name,
           "--partitions", str(cfg.partitions), "--batch", str(cfg.batch)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}) for _ in range(n)]
    client = cfg.connect()
    deadline = time.monotonic() + 120
    while client.zcard(cfg.workers) < n:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited: {p.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.05)
    time.sleep(1.5 * cfg.lease_s)  # the partitions settle between them
    client.close()
    return procs


def wait_and_stop(cfg: RedisStreamConfig, total: int, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 1800
    while sum(counts(cfg)) < total:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("workers stalled or exited")
        time.sleep(0.05)
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def check(cfg: RedisStreamConfig, expected: list[dict[str, float]]) -> None:
    outputs = read_outputs(cfg)
    assert sorted(o["n"] for o in outputs) == list(range(len(expected))), "lost or doubled events"
    for o in outputs:
        for k, v in expected[o["n"]].items():
            assert math.isclose(o["f"][k], v, rel_tol=1e-9, abs_tol=1e-9), (o["n"], k)


def redis_row(server: LocalRedis, events: list[dict[str, Any]], expected: list, workers: int, mode: str,
              partitions: int, tag: str) -> dict[str, Any]:
    cfg = RedisStreamConfig(url=server.url, name=f"{tag}-{mode}-{workers}", partitions=partitions, batch=256)
    client = cfg.connect()
    if mode == "drain":
        publish(events, cfg, FeaturePipeline(window_size=3600))
        procs = start_workers(cfg, workers)
    else:
        procs = start_workers(cfg, workers)
        publish(events, cfg, FeaturePipeline(window_size=3600))
    wait_and_stop(cfg, len(events), procs)
    last_out = entry_ms(client.xrevrange(cfg.output, count=1)[0][0])
    if mode == "drain":
        first = entry_ms(client.xrange(cfg.output, count=1)[0][0])
    else:
        first = min(entry_ms(e[0][0]) for e in (client.xrange(cfg.stream(p), count=1) for p in range(partitions))
                    if e)
    check(cfg, expected)
    client.close()
    seconds = max(1e-3, (last_out - first) / 1000)
    return {"mode": mode, "workers": workers, "partitions": partitions, "events": len(events),
            "seconds": seconds, "events_per_s": len(events) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("skipped: redis-server is not installed (Debian: apt-get install redis-server; make install adds it)")
        sys.exit(SKIPPED)
    n, partitions = (3_000, 4) if args.smoke else (args.events, args.partitions)
    events = simulate(n, args.smoke)
    rate, expected = in_process(events)
    rows = [{"mode": "in-process", "workers": 1, "events": len(events), "events_per_s": rate}]
    print(f"in-process: {rate:,.0f} events/s", flush=True)
    with LocalRedis() as server:
        for mode in ("drain", "end-to-end"):
            for workers in (1, 2):
                row = redis_row(server, events, expected, workers, mode, partitions, tag=str(os.getpid()))
                rows.append(row)
                print(f"{mode}, {workers} worker(s): {row['events_per_s']:,.0f} events/s "
                      f"({row['events_per_s'] / rate:.2f}x in-process)", flush=True)
    write_results(args, "stream_redis.json", {
        "machine": describe(summary(threads=1)), "smoke": args.smoke, "events": n, "partitions": partitions,
        "features": ["transaction_amount_std", "login_location_entropy", "device_fingerprint_match"],
        "rows": rows, "target_events_per_s_2_workers": 20_000})


if __name__ == "__main__":
    main()
