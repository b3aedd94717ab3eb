"""Redis Streams as the pipeline's source, sink and state store: events partitioned by key, features out.

Layout under a ``name`` (a prefix, so several pipelines share one Redis):

- ``{name}:in:{p}``: partition ``p``'s events (one stream per partition, consumer group ``workers``); an event's
  partition is ``crc32(json(key)) % partitions``, so every event of a key goes to one partition, in order.
- ``{name}:out``: one entry per processed event: ``{"n": row, "id": entry id, "p": p, "tx": tx_id, "f": features}``.
- ``{name}:dead``: events refused (bad fields, late events set aside): ``{"n", "id", "p", "reason", "event"}``.
- ``{name}:lease:{p}``: which worker owns partition ``p`` (expires unless renewed).
- ``{name}:meta:{p}``: the last applied entry id, the stream time and the counters of partition ``p``.
- ``{name}:idx:{p}:{g}`` / ``{name}:win:{p}:{g}:{key}``: window group ``g``'s keys (scored by their latest time)
  and each key's held events (scored by time), so a worker that takes a partition over resumes exactly.
- ``{name}:workers``: live workers by last heartbeat; ``{name}:spec``: the features and partition count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from .._core.checks import check_int, check_number
from .._core.errors import DeepSeekError, invalid, require

GROUP = "workers"


@dataclasses.dataclass(frozen=True)
class RedisStreamConfig:
    """Where and how the scaled-out pipeline runs.

    ``url``: ``redis://host:port/db``; ``name``: the key prefix; ``partitions``: streams the events are split into
    (at least the number of workers you will run); ``batch``: events a worker reads and commits at once;
    ``lease_s``: how long a silent worker keeps its partitions before another takes them over;
    ``reconnect_s``: how long a worker waits for a Redis that went away before it stops with an error."""

    url: str = "redis://127.0.0.1:6379/0"
    name: str = "deepseek"
    partitions: int = 8
    batch: int = 256
    lease_s: float = 3.0
    reconnect_s: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise invalid("url", self.url, "a Redis URL such as redis://127.0.0.1:6379/0")
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in " :\n"):
            raise invalid("name", self.name, "a non-empty key prefix without spaces or ':'")
        for field, top in (("partitions", 4096), ("batch", 4000)):  # stored as ints (a numpy int is no JSON)
            object.__setattr__(self, field, check_int(getattr(self, field), field, minimum=1, maximum=top,
                                                      expected=f"an integer in 1..{top}"))
        for field in ("lease_s", "reconnect_s"):
            check_number(getattr(self, field), field, above=0, expected="seconds > 0")

    # key names
    def stream(self, p: int) -> str:
        return f"{self.name}:in:{p}"

    @property
    def output(self) -> str:
        return f"{self.name}:out"

    @property
    def dead(self) -> str:
        return f"{self.name}:dead"

    def lease(self, p: int) -> str:
        return f"{self.name}:lease:{p}"

    def meta(self, p: int) -> str:
        return f"{self.name}:meta:{p}"

    def index(self, p: int) -> str:
        """Prefix of partition ``p``'s key indexes (``+ str(group)``)."""
        return f"{self.name}:idx:{p}:"

    def windows(self, p: int) -> str:
        """Prefix of partition ``p``'s window keys (``+ f"{group}:{key json}"``)."""
        return f"{self.name}:win:{p}:"

    @property
    def workers(self) -> str:
        return f"{self.name}:workers"

    @property
    def spec_key(self) -> str:
        return f"{self.name}:spec"

    def connect(self) -> Any:
        """A redis-py client (strings in, strings out)."""
        redis = require("redis", "the Redis stream backend", "redis==8.1.0")
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=10,
                                    socket_connect_timeout=5)


def check_reachable(url: str, *, argument: str = "url", timeout_s: float = 2.0) -> None:
    """Fail fast, naming ``argument``, when no Redis answers a PING at ``url`` within ``timeout_s`` seconds."""
    redis = require("redis", "the Redis stream backend", "redis==8.1.0")
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    except (ValueError, TypeError) as e:
        raise invalid(argument, url, f"a Redis URL such as redis://127.0.0.1:6379/0 ({e})") from None
    try:
        client.ping()
    except Exception as e:  # refused, timed out, unknown host, not Redis, needs a password: all one answer
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise invalid(argument, url, f"a Redis server that answers ({type(e).__name__}: {detail})") from None
    finally:
        client.close()


def partition_of(key: Any, partitions: int) -> int:
    """The partition of a key: stable across processes and machines (not Python's salted ``hash``): CRC-32 of the
    key's JSON (strings, numbers, booleans; anything else by its ``str``)."""
    orjson = require("orjson", "the Redis stream backend", "orjson==3.13.0")
    return zlib.crc32(orjson.dumps(key, default=str, option=orjson.OPT_SERIALIZE_NUMPY)) % partitions


def encode_event(event: Mapping[str, Any]) -> bytes:
    """An event as JSON: numpy scalars as plain numbers, datetimes as epoch seconds, NaN as null."""
    orjson = require("orjson", "the Redis stream backend", "orjson==3.13.0")
    return orjson.dumps(dict(event), default=_plain,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME)


def _plain(value: Any) -> Any:
    from .fields import to_epoch_seconds

    if isinstance(value, (dt.datetime, dt.date)) or type(value).__name__ in ("Timestamp", "datetime64"):
        return to_epoch_seconds(value, "event timestamp")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars orjson does not take
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def ensure_spec(client: Any, config: RedisStreamConfig, spec: Mapping[str, Any]) -> None:
    """Record what these streams carry (features, partitions) the first time; refuse a different one later."""
    wanted = json.dumps({"pipeline": spec, "partitions": config.partitions}, sort_keys=True)
    client.set(config.spec_key, wanted, nx=True)
    held = client.get(config.spec_key)
    if held != wanted:
        held_spec = json.loads(held)
        what = "partitions" if held_spec.get("partitions") != config.partitions else "features"
        raise invalid("name", config.name, f"streams set up with the same {what} (these were set up with "
                      f"{held_spec.get('partitions')} partitions and other features: use another name, or delete "
                      f"the keys {config.name}:*)")
    for p in range(config.partitions):
        try:
            client.xgroup_create(config.stream(p), GROUP, id="0", mkstream=True)
        except Exception as e:  # BUSYGROUP: the group exists already
            if "BUSYGROUP" not in str(e):
                raise


def publish(events: Iterable[Mapping[str, Any]], config: RedisStreamConfig, pipeline: Any, *,
            chunk: int = 1000, start_row: int = 0) -> int:
    """Append ``events`` to their partitions' streams (by ``pipeline``'s key field), numbered from ``start_row``
    in the order given. Returns how many were written."""
    key_column = partition_key(pipeline)
    client = config.connect()
    ensure_spec(client, config, pipeline.spec())
    n = start_row
    pipe = client.pipeline(transaction=False)
    streams = [config.stream(p) for p in range(config.partitions)]
    partition: dict[Any, int] = {}  # key -> partition, for this call
    try:
        for event in events:
            if not isinstance(event, Mapping):
                raise invalid("events", type(event).__name__, "mappings of field -> value (dicts or rows)")
            try:
                payload = encode_event(event)
                key = event.get(key_column)
                if isinstance(key, (str, int)):
                    p = partition.get(key)
                    if p is None:
                        p = partition[key] = partition_of(key, config.partitions)
                else:
                    p = partition_of(key, config.partitions)
            except (TypeError, ValueError) as e:  # orjson.JSONEncodeError is a TypeError
                raise invalid(f"event {n}", f"a value JSON cannot carry ({e})", "numbers, strings and times") from None
            pipe.execute_command("XADD", streams[p], "*", "e", payload, "n", n)
            n += 1
            if (n - start_row) % chunk == 0:
                pipe.execute()
        pipe.execute()
    except DeepSeekError:
        raise
    except Exception as e:
        raise _redis_error(config, e) from None
    finally:
        client.close()
    return n - start_row


def partition_key(pipeline: Any) -> str:
    """The one column every window of ``pipeline`` is keyed by — what events are partitioned on."""
    if pipeline._delayed:
        raise invalid("features", [f.name for g in pipeline._delayed for f in g.features],
                      "window features only: delayed (label) features need every label, which a partitioned "
                      "pipeline does not see; compute them in one process")
    if pipeline.max_keys is not None:
        raise invalid("max_keys", pipeline.max_keys, "None with Redis state (bounded by the ttl)")
    columns = sorted({pipeline.fields.column(g.by) for g in pipeline._groups})
    if len(columns) != 1:
        raise invalid("features", f"windows keyed by {columns}",
                      "features that share one key, so events can be partitioned by it (run one worker pool per "
                      "key and join the outputs on tx_id)")
    return columns[0]


def read_outputs(config: RedisStreamConfig, *, dead: bool = False) -> list[dict[str, Any]]:
    """Every entry of the output stream (or the dead letters), decoded, in the order written."""
    client = config.connect()
    try:
        out: list[dict[str, Any]] = []
        start = "-"
        while True:
            entries = client.xrange(config.dead if dead else config.output, min=start, count=10_000)
            out += [json.loads(fields["r"]) for _, fields in entries]
            if len(entries) < 10_000:
                return out
            start = "(" + entries[-1][0]
    except DeepSeekError:
        raise
    except Exception as e:
        raise _redis_error(config, e) from None
    finally:
        client.close()


def counts(config: RedisStreamConfig) -> tuple[int, int]:
    """(outputs written, dead letters written)."""
    client = config.connect()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xlen(config.output)
        pipe.xlen(config.dead)
        out, dead = pipe.execute()
        return int(out), int(dead)
    finally:
        client.close()


def _redis_error(config: RedisStreamConfig, e: Exception) -> DeepSeekError:
    return DeepSeekError(f"Redis at {config.url}: {type(e).__name__}: {e}")
