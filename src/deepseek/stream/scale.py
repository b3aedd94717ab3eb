"""``deepseek stream scale|publish|worker``: a file's features computed by N worker processes over Redis Streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core.checks import check_flag, check_int
from .._core.errors import DeepSeekError, invalid
from .pipeline import FeaturePipeline
from .redis_streams import RedisStreamConfig, check_reachable, counts, partition_key, publish, read_outputs


def pipeline_factory(config_path: str | Path | None, *, argument: str = "config_path") -> Callable[[], FeaturePipeline]:
    """A factory of the pipeline ``stream.yaml`` describes (without one: the three fraud features
    transaction_amount_std, login_location_entropy, device_fingerprint_match)."""
    from .config import StreamConfig

    config = StreamConfig.from_yaml(config_path, argument=argument) if config_path else StreamConfig()
    return config.pipeline


def scale_file(source: str | Path, output: str | Path, *, config_path: str | None = None, workers: int = 2,
               url: str | None = None, partitions: int = 8, batch: int = 256, lease_s: float = 3.0,
               name: str | None = None, limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Publish ``source``'s rows to Redis, compute their features with ``workers`` processes, write ``output``
    (tx_id + features in input order; dead letters beside it as ``.dead.jsonl``). Starts a throwaway
    redis-server when ``url`` is None. Returns counts and the end-to-end rate."""
    from .._core.atomic import atomic_path, check_output
    from .redis_server import LocalRedis
    from .replay import read_transactions

    inputs = [source] + ([config_path] if config_path else [])
    check_output(output, argument="output", inputs=inputs)
    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise invalid("output", str(output), "a .csv or .parquet file name")
    check_output(output.with_name(output.stem + ".dead.jsonl"), argument="output (its dead letters beside it)",
                 inputs=inputs)
    workers = check_int(workers, "workers", minimum=1)
    partitions = check_int(partitions, "partitions", minimum=workers,
                           expected=f"an integer >= workers ({workers}): a worker without a partition "
                                    "has nothing to do")
    limit = check_int(limit, "limit", minimum=1, optional=True)
    check_flag(progress, "progress")
    # every setting is checked before the data is read or a process started
    RedisStreamConfig(url=url or "redis://127.0.0.1:6379/0", name=name or "scale", partitions=partitions,
                      batch=batch, lease_s=lease_s)
    factory = pipeline_factory(config_path)
    partition_key(factory())
    if url is not None:
        check_reachable(url)
    frame = read_transactions(source, argument="source")
    if limit is not None:
        frame = frame.iloc[:limit]
    server = LocalRedis().start() if url is None else None
    try:
        config = RedisStreamConfig(url=server.url if server else url, name=name or f"scale-{uuid.uuid4().hex[:8]}",
                                   partitions=partitions, batch=batch, lease_s=lease_s)
        procs, logs = _start_workers(config, config_path, workers)
        try:
            _wait_for_workers(config, procs, logs, workers)
            started = time.monotonic()
            total = publish(frame.to_dict("records"), config, factory())
            done = _wait_until_done(config, total, procs, logs, progress)
            elapsed = time.monotonic() - started
        finally:
            _stop_workers(procs)
        outputs = read_outputs(config)
        dead = read_outputs(config, dead=True)
        span = _span_seconds(config)
    finally:
        if server is not None:
            server.stop()
    import pandas as pd

    names = factory().feature_names
    rows = sorted(outputs, key=lambda o: o["n"])
    result = pd.DataFrame([o["f"] for o in rows], columns=names)
    result.insert(0, "tx_id", [o["tx"] for o in rows])
    with atomic_path(output) as tmp:
        if output.suffix.lower() == ".csv":
            result.to_csv(tmp, index=False)
        else:
            result.to_parquet(tmp, index=False)
    dead_path = None
    if dead:
        dead_path = output.with_name(output.stem + ".dead.jsonl")
        with atomic_path(dead_path) as tmp:
            Path(tmp).write_text("".join(json.dumps(d) + "\n" for d in sorted(dead, key=lambda d: d["n"])))
    return {"events": total, "features": len(rows), "dead": len(dead), "done": done, "workers": workers,
            "partitions": partitions, "seconds": elapsed, "events_per_s": total / span if span else None,
            "output": str(output), "dead_letters": str(dead_path) if dead_path else None}


def _worker_command(config: RedisStreamConfig, config_path: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "deepseek", "stream", "worker", "--redis", config.url, "--name", config.name,
           "--partitions", str(config.partitions), "--batch", str(config.batch), "--lease", str(config.lease_s)]
    return cmd + (["--config", str(config_path)] if config_path else [])


def _start_workers(config: RedisStreamConfig, config_path: str | None, n: int) -> tuple[list, list[Path]]:
    folder = Path(tempfile.mkdtemp(prefix="deepseek-workers-"))
    procs, logs = [], []
    for i in range(n):
        log = folder / f"worker-{i}.log"
        with open(log, "w") as handle:
            procs.append(subprocess.Popen(_worker_command(config, config_path), stdout=handle,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        logs.append(log)
    return procs, logs


def _check_alive(procs: list, logs: list[Path]) -> None:
    for proc, log in zip(procs, logs, strict=True):
        if proc.poll() is not None:
            raise DeepSeekError(f"a worker exited with status {proc.returncode}: "
                                f"{log.read_text()[-1500:].strip() or 'no output'}")


def _wait_for_workers(config: RedisStreamConfig, procs: list, logs: list[Path], n: int,
                      timeout: float = 120.0) -> None:
    client = config.connect()
    try:
        deadline = time.monotonic() + timeout
        while client.zcard(config.workers) < n:
            _check_alive(procs, logs)
            if time.monotonic() > deadline:
                raise DeepSeekError(f"{n} workers did not start within {timeout:g} s")
            time.sleep(0.05)
    finally:
        client.close()


def _wait_until_done(config: RedisStreamConfig, total: int, procs: list, logs: list[Path], progress: bool,
                     stall_s: float = 120.0) -> int:
    from .._core.progress import progress as make_bar

    bar = make_bar() if progress else None
    task = bar.add_task("features (events)", total=total) if bar else None
    if bar:
        bar.start()
    try:
        last, last_change = -1, time.monotonic()
        while True:
            done = sum(counts(config))
            if bar:
                bar.update(task, completed=done)
            if done >= total:
                return done
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                raise DeepSeekError(f"no progress for {stall_s:g} s at {done:,} of {total:,} events")
            _check_alive(procs, logs)
            time.sleep(0.1)
    finally:
        if bar:
            bar.stop()


def _stop_workers(procs: list) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _span_seconds(config: RedisStreamConfig) -> float | None:
    """Seconds from the first event published to the last output written, by Redis' own clock (entry ids)."""
    client = config.connect()
    try:
        firsts = [client.xrange(config.stream(p), count=1) for p in range(config.partitions)]
        first = min((int(e[0][0].split("-")[0]) for e in firsts if e), default=None)
        last = client.xrevrange(config.output, count=1)
        if first is None or not last:
            return None
        return max(1e-3, (int(last[0][0].split("-")[0]) - first) / 1000)
    finally:
        client.close()
