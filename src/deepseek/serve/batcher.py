"""Dynamic batching: requests for one model version are stacked up to ``max_batch_size`` rows or until the first
has waited ``max_queue_delay_ms``, run in one call, and split back. The queue is bounded: when it is full a new
request is refused at once (:class:`QueueFull`), so memory never grows without bound under overload.

The queue delay is spent only while it pays: not at all while traffic is not concurrent (the previous batch held
one request and no other waits), and never longer than requests keep arriving — once none has come for an
eighth of the delay, the batch runs. A lone request on an idle model runs at once; under steady load batches
fill to ``max_batch_size`` or the delay; a burst from a few clients runs as soon as the burst is in."""

from __future__ import annotations

import collections
import dataclasses
import numbers
import threading
import time
from concurrent.futures import Future
from typing import Any

from .._core.checks import check_number
from .._core.errors import DeepSeekError, invalid
from .config import MAX_SECONDS
from .handler import Handler


class QueueFull(DeepSeekError):
    """The model's queue holds ``max_queue_size`` requests: retry later (HTTP 503 with Retry-After)."""


class VersionClosed(QueueFull):
    """The version stopped taking requests (unloaded or swapped out): route the request again."""


class RequestTimeout(DeepSeekError):
    """The request's deadline passed before its batch ran (HTTP 504)."""


class HandlerError(Exception):
    """The model or a custom handler raised while running a batch (HTTP 500 for those requests only)."""


class InputRejected(HandlerError):
    """ONNX Runtime refused one request's input that matched the declared names, dtypes and shapes — a dimension
    the graph cannot broadcast or reshape (HTTP 422 for that request: the model ran on its warm-up input)."""


# ONNX Runtime's errors from running a graph on a given input (its pybind module's classes, matched by name so
# that this module imports no runtime)
_ORT_INPUT_ERRORS = ("InvalidArgument", "RuntimeException", "Fail")


def _failure(exc: Exception) -> HandlerError:
    """What a request that failed alone is told: its input was refused by the runtime, or the handler failed."""
    kind = type(exc)
    rejected = kind.__module__.startswith("onnxruntime") and kind.__name__ in _ORT_INPUT_ERRORS
    return (InputRejected if rejected else HandlerError)(f"{kind.__name__}: {exc}")


@dataclasses.dataclass
class _Item:
    request: Any
    rows: int
    future: Future
    enqueued: float
    deadline: float | None


@dataclasses.dataclass
class BatchStats:
    """What a batch looked like, for metrics: requests and rows it held, seconds the oldest waited, seconds it ran."""

    requests: int
    rows: int
    queue_seconds: list[float]
    run_seconds: float


class DynamicBatcher:
    """Runs ``handler.predict`` on batches from one bounded queue, with ``instances`` worker threads."""

    def __init__(self, handler: Handler, *, max_batch_size: int, max_queue_delay_ms: float, max_queue_size: int,
                 instances: int = 1, on_batch: Any = None, name: str = "model") -> None:
        check_number(max_batch_size, "max_batch_size", minimum=1, integer=True)
        check_number(max_queue_size, "max_queue_size", minimum=1, integer=True)
        check_number(instances, "instances", minimum=1, maximum=256, integer=True)
        check_number(max_queue_delay_ms, "max_queue_delay_ms", minimum=0, maximum=MAX_SECONDS * 1000)
        self.handler = handler
        self.max_batch_size, self.max_queue_size = max_batch_size, max_queue_size
        self.delay = max_queue_delay_ms / 1000.0
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0
        self._last_batch = 1  # requests in the previous batch: > 1 means traffic is concurrent
        self._last_arrival = 0.0
        self._idle = max(self.delay / 8, 0.0002)  # no arrival for this long: the burst is in
        self._on_batch = on_batch
        self._threads = [threading.Thread(target=self._work, name=f"deepseek-batcher-{name}-{i}", daemon=True)
                         for i in range(instances)]
        for t in self._threads:
            t.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Requests queued or running."""
        with self._cond:
            return len(self._queue) + self._busy

    def submit(self, request: Any, rows: int, timeout_s: float | None = None) -> Future:
        """Queue one decoded request of ``rows`` rows; the future gets its share of the batch's output."""
        if timeout_s is not None:
            check_number(timeout_s, "timeout_s", above=0, maximum=MAX_SECONDS)
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) or rows < 1:
            raise invalid("inputs", f"a request of {rows!r} rows", "at least one row")
        rows = int(rows)
        if rows > self.max_batch_size:
            raise invalid("inputs", f"a batch of {rows} rows", f"at most max_batch_size={self.max_batch_size} rows "
                          "per request")
        now = time.monotonic()
        item = _Item(request, rows, Future(), now, now + timeout_s if timeout_s else None)
        with self._cond:
            if self._closed:
                raise VersionClosed("model version is being unloaded")
            if len(self._queue) >= self.max_queue_size:
                raise QueueFull(f"queue full ({self.max_queue_size} requests waiting)")
            self._queue.append(item)
            self._last_arrival = now
            self._cond.notify()
        return item.future

    def close(self, wait: bool = True) -> None:
        """Stop taking requests; the queued and running ones finish first when ``wait``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join()

    # -- worker ----------------------------------------------------------------------------------------------
    def _take(self) -> list[_Item] | None:
        """The next batch: wait for a first request, then for more until the batch is full or its delay is over."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first_at = self._queue[0].enqueued
            while not self._closed:
                rows, overflow = self._fitting_rows()
                now = time.monotonic()
                left = first_at + self.delay - now
                quiet = self._idle - (now - self._last_arrival)
                concurrent = self._last_batch > 1 or len(self._queue) > 1
                if rows >= self.max_batch_size or overflow or left <= 0 or quiet <= 0 or not concurrent:
                    break
                self._cond.wait(min(left, quiet))
            batch, rows = [], 0
            while self._queue and rows + self._queue[0].rows <= self.max_batch_size:
                item = self._queue.popleft()
                rows += item.rows
                batch.append(item)
            self._busy += len(batch)
            self._last_batch = len(batch)
            return batch

    def _fitting_rows(self) -> tuple[int, bool]:
        """Rows of the queued requests that fit in one batch, and whether a request waits that does not fit."""
        rows = 0
        for item in self._queue:
            if rows + item.rows > self.max_batch_size:
                return rows, True
            rows += item.rows
        return rows, False

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy -= len(batch)

    def _run(self, batch: list[_Item]) -> None:
        now = time.monotonic()
        live = []
        for item in batch:
            if item.future.cancelled():
                continue
            if item.deadline is not None and now > item.deadline:
                item.future.set_exception(RequestTimeout(f"timed out after {now - item.enqueued:.3f} s in the queue"))
                continue
            live.append(item)
        if not live:
            return
        started = time.monotonic()
        try:
            results = self._execute(live)
        except Exception as exc:  # the handler's failure fails this batch's requests, never the server
            if len(live) > 1:  # one request may be the cause: run each alone, so only it fails
                for item in live:
                    self._run_alone(item)
                self._report(live, started, ok=True)
                return
            error = _failure(exc)
            for item in live:
                if not item.future.done():
                    item.future.set_exception(error)
            self._report(live, started, ok=False)
            return
        for item, result in zip(live, results):
            if not item.future.done():
                item.future.set_result(result)
        self._report(live, started, ok=True)

    def _execute(self, live: list[_Item]) -> list[Any]:
        h = self.handler
        outputs = h.unbatch(h.predict(h.batch([i.request for i in live])), [i.rows for i in live])
        if len(outputs) != len(live):
            raise RuntimeError(f"unbatch returned {len(outputs)} results for {len(live)} requests")
        return [h.encode_response(o) for o in outputs]

    def _run_alone(self, item: _Item) -> None:
        try:
            result = self._execute([item])[0]
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(_failure(exc))
            return
        if not item.future.done():
            item.future.set_result(result)

    def _report(self, live: list[_Item], started: float, ok: bool) -> None:
        if self._on_batch is not None:
            self._on_batch(BatchStats(len(live), sum(i.rows for i in live),
                                      [started - i.enqueued for i in live], time.monotonic() - started))
