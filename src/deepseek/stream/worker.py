"""StreamWorker: one of N processes that share a partitioned event stream in Redis, with the window state in Redis.

Each partition has one owner at a time (a lease in Redis that the owner renews); the live workers split the
partitions evenly and a silent worker's partitions go to the others when its lease runs out. A worker reads a
batch of a partition's events, computes their features in memory (the partition's :class:`FeaturePipeline`), then
commits in one atomic Redis script: the events' window entries, the outputs, the dead letters, the acks and the
last applied entry id — only if it still holds the lease. So a worker killed at any moment leaves either the whole
batch or none of it; the next owner resumes from the committed state, claims the dead worker's pending events
(XAUTOCLAIM) and skips those already applied: no event is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core.errors import DeepSeekError, invalid, require
from .pipeline import FeaturePipeline, _key
from .redis_streams import GROUP, RedisStreamConfig, ensure_spec, partition_key
from .window import KeyWindow

# KEYS: lease, meta, input stream, output stream, dead letters
# ARGV: me, group, applied id, max_time, counters, window prefix, index prefix, groups, expiry cutoff ('' = none),
#       then counted lists: acks; outputs; dead letters; keys (group, key json, trim cutoff, latest, n, n x (score,
#       member))
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local i = 10
local n = tonumber(ARGV[i])
if n > 0 then redis.call('XACK', KEYS[3], ARGV[2], unpack(ARGV, i + 1, i + n)) end
i = i + n + 1
n = tonumber(ARGV[i])
for j = 1, n do redis.call('XADD', KEYS[4], '*', 'r', ARGV[i + j]) end
i = i + n + 1
n = tonumber(ARGV[i])
for j = 1, n do redis.call('XADD', KEYS[5], '*', 'r', ARGV[i + j]) end
i = i + n + 1
n = tonumber(ARGV[i])
i = i + 1
for j = 1, n do
  local g, key, trim, latest, m = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local wkey = ARGV[6] .. g .. ':' .. key
  i = i + 5
  for k = 1, m do
    redis.call('ZADD', wkey, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('ZREMRANGEBYSCORE', wkey, '-inf', trim)
  redis.call('ZADD', ARGV[7] .. g, latest, key)
end
if ARGV[9] ~= '' then
  for g = 0, tonumber(ARGV[8]) - 1 do
    local idx = ARGV[7] .. g
    local old = redis.call('ZRANGEBYSCORE', idx, '-inf', '(' .. ARGV[9], 'LIMIT', 0, 1000)
    for _, key in ipairs(old) do redis.call('DEL', ARGV[6] .. g .. ':' .. key) end
    if #old > 0 then redis.call('ZREM', idx, unpack(old)) end
  end
end
redis.call('HSET', KEYS[2], 'applied', ARGV[3], 'max_time', ARGV[4], 'counters', ARGV[5])
return 1
"""

_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _entry_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class _Partition:
    index: int
    pipeline: FeaturePipeline
    applied: tuple[int, int]
    claiming: bool = True  # pending entries of earlier owners are still to be claimed
    cursor: str = "0-0"


@dataclass
class WorkerStats:
    """What a worker did: events applied, duplicates skipped, dead letters, pending events claimed from others,
    partitions taken over and lost, batches committed."""

    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    claimed: int = 0
    acquired: int = 0
    lost: int = 0
    commits: int = 0
    reconnects: int = 0


class StreamWorker:
    """One worker of a pool over the Redis streams of ``config`` computing ``pipeline_factory()``'s features.

    ``pipeline_factory`` builds a fresh :class:`FeaturePipeline` (one per owned partition); every worker of a pool
    must build the same features (checked against the spec the streams were set up with). ``run()`` works until
    :meth:`stop` (or SIGTERM in :func:`run_worker_process`); ``run(until_idle=s)`` returns once no event has come
    for ``s`` seconds."""

    def __init__(self, pipeline_factory: Callable[[], FeaturePipeline], config: RedisStreamConfig, *,
                 name: str | None = None) -> None:
        if not isinstance(config, RedisStreamConfig):
            raise invalid("config", type(config).__name__, "a RedisStreamConfig")
        if not callable(pipeline_factory):
            raise invalid("pipeline_factory", type(pipeline_factory).__name__, "a callable that returns a "
                                                                               "FeaturePipeline")
        if name is not None and (not isinstance(name, str) or not name):
            raise invalid("name", name, "a non-empty worker name")
        self.config = config
        self.factory = pipeline_factory
        probe = pipeline_factory()
        if not isinstance(probe, FeaturePipeline):
            raise invalid("pipeline_factory", f"a callable returning {type(probe).__name__}", "one returning a "
                                                                                             "FeaturePipeline")
        self.key_column = partition_key(probe)
        self.spec = probe.spec()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.stats = WorkerStats()
        self._parts: dict[int, _Partition] = {}
        self._stop = False
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._next_beat = 0.0
        self._json = require("orjson", "the Redis stream backend", "orjson==3.13.0")

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run` (leases released)."""
        self._stop = True

    def run(self, *, until_idle: float | None = None) -> WorkerStats:
        """Process events until stopped (or idle for ``until_idle`` seconds). A Redis that goes away is retried
        for ``config.reconnect_s`` seconds, uncommitted work dropped; after that a clear error is raised."""
        idle_since = time.monotonic()
        down_since: float | None = None
        while not self._stop:
            try:
                if self._client is None:
                    self._connect()
                if time.monotonic() >= self._next_beat:
                    self._heartbeat()
                got = self.step(block_ms=100 if until_idle is None else 50)
                down_since = None
            except DeepSeekError:
                raise
            except Exception as e:
                if not _is_connection_error(e):
                    raise
                if not self.stats.reconnects:  # never reached: a wrong URL or no server, not one that went away
                    self._drop_all()
                    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise invalid("config.url", self.config.url, f"a Redis server that answers ({type(e).__name__}: "
                                                                 f"{detail})") from None
                self._drop_all()
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self.config.reconnect_s:
                    raise DeepSeekError(f"Redis at {self.config.url} went away and did not come back within "
                                        f"{self.config.reconnect_s:g} s ({type(e).__name__}: {e}); the committed "
                                        "state is safe in Redis: restart the worker when it is back") from None
                time.sleep(min(0.5, self.config.reconnect_s / 10))
                continue
            now = time.monotonic()
            if got:
                idle_since = now
            elif until_idle is not None and now - idle_since >= until_idle:
                break
        self._shutdown()
        return self.stats

    def _connect(self) -> None:
        if not self.stats.reconnects:  # the first time: a short timeout, so a wrong URL fails fast
            from .redis_streams import check_reachable

            check_reachable(self.config.url, argument="config.url")
        client = self.config.connect()
        client.ping()
        ensure_spec(client, self.config, self.spec)
        self._client = client
        self._scripts = {"commit": client.register_script(_COMMIT), "acquire": client.register_script(_ACQUIRE),
                         "release": client.register_script(_RELEASE)}
        self.stats.reconnects += 1

    def _drop_all(self) -> None:
        """Forget uncommitted work and the client (the Redis state is the truth)."""
        self._parts.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._client = None
        self._next_beat = 0.0

    def _shutdown(self) -> None:
        if self._client is None:
            return
        try:
            for p in list(self._parts):
                self._scripts["release"](keys=[self.config.lease(p)], args=[self.name])
            self._client.zrem(self.config.workers, self.name)
        except Exception:
            pass  # the leases expire by themselves
        self._drop_all()

    # -- ownership ------------------------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """Say we are alive, renew our leases, and take or give partitions so the live workers share them evenly."""
        c, cfg = self._client, self.config
        lease_ms = int(cfg.lease_s * 1000)
        seconds, micros = c.time()
        now_ms = seconds * 1000 + micros // 1000
        pipe = c.pipeline(transaction=False)
        pipe.zadd(cfg.workers, {self.name: now_ms})
        pipe.zremrangebyscore(cfg.workers, "-inf", now_ms - 10 * lease_ms)
        pipe.zrangebyscore(cfg.workers, now_ms - lease_ms, "+inf")
        live = pipe.execute()[2]
        for p in list(self._parts):
            if not self._scripts["acquire"](keys=[cfg.lease(p)], args=[self.name, lease_ms]):
                self._lose(p)
        share = math.ceil(cfg.partitions / max(1, len(live)))
        while len(self._parts) > share:
            p = max(self._parts)
            self._scripts["release"](keys=[cfg.lease(p)], args=[self.name])
            del self._parts[p]
        if len(self._parts) < share:
            rank = sorted(live).index(self.name) if self.name in live else 0
            order = [(rank * share + k) % cfg.partitions for k in range(cfg.partitions)]
            for p in order:
                if len(self._parts) >= share:
                    break
                if p not in self._parts and self._scripts["acquire"](keys=[cfg.lease(p)], args=[self.name, lease_ms]):
                    self._take(p)
        self._next_beat = time.monotonic() + cfg.lease_s / 3

    def _lose(self, p: int) -> None:
        self._parts.pop(p, None)
        self.stats.lost += 1

    def _take(self, p: int) -> None:
        """Own partition ``p``: rebuild its pipeline from the committed state in Redis."""
        c, cfg = self._client, self.config
        pipeline = self.factory()
        meta = c.hgetall(cfg.meta(p))
        applied = _entry_id(meta["applied"]) if meta.get("applied") else (0, 0)
        if meta.get("max_time"):
            pipeline._max_time = float(meta["max_time"])
            pipeline.watermark = pipeline._max_time - pipeline.allowed_lateness
        if meta.get("counters"):
            saved = json.loads(meta["counters"])
            pipeline.counters.update({k: int(v) for k, v in saved.items() if k in pipeline.counters})
        for g, group in enumerate(pipeline._groups):
            keys = c.zrange(cfg.index(p) + str(g), 0, -1)
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                pipe = c.pipeline(transaction=False)
                for key in chunk:
                    pipe.zrange(f"{cfg.windows(p)}{g}:{key}", 0, -1, withscores=True)
                for key, members in zip(chunk, pipe.execute(), strict=True):
                    if not members:
                        continue
                    entries = [(score, *json.loads(member)) for member, score in members]
                    window = KeyWindow.restore(group, max(e[0] for e in entries), max(e[1] for e in entries) + 1,
                                               entries, pipeline.allowed_lateness)
                    pipeline._state[g][_key(json.loads(key))] = window
        self._parts[p] = _Partition(p, pipeline, applied)
        self.stats.acquired += 1

    # -- work -----------------------------------------------------------------------------------------------------
    def step(self, block_ms: int = 0) -> int:
        """Read, process and commit one batch per owned partition that has events. Returns events handled."""
        if not self._parts:
            time.sleep(block_ms / 1000)
            return 0
        c, cfg = self._client, self.config
        batches: dict[int, list] = {}
        for part in self._parts.values():
            if part.claiming:
                cursor, entries, _deleted = c.xautoclaim(cfg.stream(part.index), GROUP, self.name, 0,
                                                         start_id=part.cursor, count=cfg.batch)[:3]
                part.cursor = cursor
                part.claiming = cursor != "0-0"
                self.stats.claimed += len(entries)
                if entries:
                    batches[part.index] = entries
        # new events only once the earlier owners' pending ones are done, so a key's events stay in order
        reading = {cfg.stream(p): ">" for p, part in self._parts.items() if not part.claiming and p not in batches}
        if reading:
            got = c.xreadgroup(GROUP, self.name, reading, count=cfg.batch,
                               block=None if batches or not block_ms else block_ms)
            for stream, entries in got or []:
                if entries:
                    batches[int(stream.rsplit(":", 1)[1])] = entries
        handled = 0
        for p, entries in batches.items():
            if p in self._parts:
                handled += self._apply(self._parts[p], entries)
        return handled

    def _apply(self, part: _Partition, entries: list) -> int:
        cfg, pipeline = self.config, part.pipeline
        loads, dumps = self._json.loads, self._json.dumps
        process, state, key_columns = pipeline.process, pipeline._state, [spec[0] for spec in pipeline._specs]
        tx_column = pipeline.fields.tx_id
        acks, outs, deads = [], [], []
        added: dict[tuple[int, Any], list] = {}  # (group, key) -> window entries this batch added
        applied = part.applied
        late_before = pipeline.counters["late_side_output"]
        for entry_id, fields in entries:
            acks.append(entry_id)
            if fields is None:  # deleted from the stream while pending
                continue
            eid = _entry_id(entry_id)
            if eid <= part.applied:
                self.stats.duplicates += 1
                continue
            applied = eid
            row = int(fields.get("n", -1))
            try:
                event = loads(fields["e"])
                if not isinstance(event, dict):
                    raise DeepSeekError(f"event: got {type(event).__name__}, expected a JSON object")
                features = process(event)
            except (DeepSeekError, ValueError, KeyError) as e:
                deads.append(dumps({"n": row, "id": entry_id, "p": part.index, "reason": str(e),
                                    "event": fields.get("e")}))
                continue
            if features is None:
                if pipeline.counters["late_side_output"] > late_before:
                    late_before = pipeline.counters["late_side_output"]
                    deads.append(dumps({"n": row, "id": entry_id, "p": part.index, "reason": "late",
                                        "event": fields.get("e")}))
                continue
            for g, column in enumerate(key_columns):
                key = event[column]
                window = state[g][key]
                seq = window.seq - 1  # the entry this event added: last in time order unless it came late
                last = window.window[-1] if window.window else None
                entry = last if last is not None and last[1] == seq else next(
                    e for e in (*window.expired, *window.window) if e[1] == seq)
                added.setdefault((g, key), []).append(entry)
            outs.append(dumps({"n": row, "id": entry_id, "p": part.index, "tx": event.get(tx_column),
                               "f": features}))
        key_args: list[Any] = []
        n_keys = 0
        for (g, key), new in added.items():
            window = state[g].get(key)
            if window is None:  # expired within the batch
                continue
            n_keys += 1
            trim = window.latest - window.group.window - pipeline.allowed_lateness
            key_args += [g, dumps(key), repr(trim), repr(window.latest), len(new)]
            for t, s, values in new:
                key_args += [repr(t), dumps([s, values])]
        expire = "" if pipeline._max_time == -math.inf else repr(pipeline._max_time - pipeline.ttl)
        args = [self.name, GROUP, f"{applied[0]}-{applied[1]}", repr(pipeline._max_time),
                dumps(pipeline.counters), cfg.windows(part.index), cfg.index(part.index),
                len(pipeline._groups), expire, len(acks), *acks, len(outs), *outs, len(deads), *deads,
                n_keys, *key_args]
        ok = self._scripts["commit"](keys=[cfg.lease(part.index), cfg.meta(part.index), cfg.stream(part.index),
                                           cfg.output, cfg.dead], args=args)
        if not ok:  # the lease went to another worker: this batch is theirs to redo
            self._lose(part.index)
            return 0
        part.applied = applied
        self.stats.applied += len(outs)
        self.stats.dead += len(deads)
        self.stats.commits += 1
        return len(entries)


def _is_connection_error(e: Exception) -> bool:
    try:
        import redis
    except ImportError:
        return False
    return isinstance(e, (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError))


def run_worker_process(pipeline_factory: Callable[[], FeaturePipeline], config: RedisStreamConfig, *,
                       name: str | None = None, until_idle: float | None = None) -> WorkerStats:
    """Run a worker in this process until SIGTERM/SIGINT (graceful: the batch in hand is committed)."""
    worker = StreamWorker(pipeline_factory, config, name=name)

    def _graceful(signum: int, frame: Any) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _graceful)
    signal.signal(signal.SIGINT, _graceful)
    return worker.run(until_idle=until_idle)
