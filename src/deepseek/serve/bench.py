"""Measure a v2 server under load: a concurrency sweep with throughput, p50/p95/p99 and the average batch size the
server formed (read from its own ``/metrics``)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_number
from .._core.errors import invalid
from .loadgen import run_load, sample_inputs


def _get(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
    return body if url.endswith("/metrics") else json.loads(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(target: str, *extra: str) -> Iterator[str]:
    """``target`` itself if it is a URL; for a model repository, a `deepseek serve` process on a free port."""
    if not Path(target).is_dir():
        yield target.rstrip("/") if "://" in target else f"http://{target.rstrip('/')}"
        return
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deepseek", "serve", target, "--port", str(port), *extra],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, log)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def wait_ready(url: str, proc: subprocess.Popen | None = None, log: Any = None, timeout_s: float = 300,
               path: str = "/v2/health/ready") -> None:
    """Wait until ``url + path`` answers 200 (and, for the v2 path, says ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if log is not None:
                log.seek(0)
                tail = log.read()[-2000:]
            raise invalid("MODEL_REPO", url, f"a repository the server can load (it exited: {tail})")
        try:
            with urllib.request.urlopen(url + path, timeout=10) as resp:
                body = resp.read()
            if resp.status == 200 and (path != "/v2/health/ready" or json.loads(body).get("ready")):
                return
        except urllib.error.HTTPError as exc:
            if proc is not None and exc.code == 503 and path == "/v2/health/ready":
                _refuse_unloadable(url)  # a server started here answers once every model was tried
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.1)
    raise invalid("URL", url, f"a server that is ready within {timeout_s:.0f} s")


def _refuse_unloadable(url: str) -> None:
    """The server runs but loaded no model: an error with the index's reasons."""
    try:
        index = _get(url + "/v2/repository/index", "POST")
        reasons = "; ".join(f"{r['name']}/{r['version']}: {r['reason']}" for r in index)[:1000]
    except (urllib.error.URLError, OSError, ValueError, TypeError, KeyError):
        return
    raise invalid("MODEL_REPO", url, f"a repository with at least one loadable model ({reasons or 'none found'})")


def batch_counters(url: str, model: str) -> tuple[float, float]:
    """(sum, count) of the server's ``deepseek_batch_size`` histogram for ``model``, all versions."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(_get(url + "/metrics").decode())
    samples = [s for family in families if family.name == "deepseek_batch_size" for s in family.samples
               if s.labels.get("model") == model]
    return (sum((s.value for s in samples if s.name.endswith("_sum")), 0.0),
            sum((s.value for s in samples if s.name.endswith("_count")), 0.0))


def bench_server(url: str, model: str | None, levels: list[int], *, requests: int, rows: int = 1,
                 version: str | None = None) -> dict[str, Any]:
    if not isinstance(levels, (list, tuple)) or not levels:
        raise invalid("levels", levels, "a non-empty list of connection counts")
    for level in levels:
        check_number(level, "levels", minimum=1, maximum=4096, integer=True)
    check_number(requests, "requests", minimum=1, integer=True)
    check_number(rows, "rows", minimum=1, integer=True)
    try:
        index = _get(url + "/v2/repository/index", "POST")
    except (urllib.error.URLError, OSError, ValueError, OverflowError) as exc:
        raise invalid("URL", url, f"a running KServe v2 server ({' '.join(str(exc).split())})") from None
    if not isinstance(index, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in index):
        raise invalid("URL", url, "a KServe v2 server (its /v2/repository/index answer is not a list of models)")
    ready = [row["name"] for row in index if row.get("state") == "READY"]
    if not ready:
        raise invalid("URL", url, "a server with at least one model loaded")
    model = model or ready[0]
    check_choice(model, "--model", ready, expected=f"one of the loaded models {sorted(set(ready))}")
    try:
        inputs = sample_inputs(_get(f"{url}/v2/models/{urllib.request.quote(model, safe='')}"), rows=rows)
    except (urllib.error.URLError, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise invalid("URL", url, f"a KServe v2 server whose metadata of {model!r} lists its inputs "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    run_load(url, model, inputs, concurrency=1, requests=5, version=version)  # warm the connection path
    rows_out = []
    for level in levels:
        before = batch_counters(url, model)
        result = run_load(url, model, inputs, concurrency=level, requests=max(requests, level), version=version)
        after = batch_counters(url, model)
        summary = result.summary()
        batches = after[1] - before[1]
        summary["avg_batch_size"] = (after[0] - before[0]) / batches if batches else None
        rows_out.append(summary)
    return {"url": url, "model": model, "rows_per_request": rows, "levels": rows_out}


def results_table(result: dict[str, Any]) -> Any:
    from .._core.table import Table

    table = Table(title=f"{result['model']} at {result['url']} ({result['rows_per_request']} row(s) per request)",
                  title_justify="left")
    for col in ("concurrency", "requests/s", "p50 ms", "p95 ms", "p99 ms", "avg batch", "ok", "refused", "errors"):
        table.add_column(col, justify="right")
    for r in result["levels"]:
        batch = "–" if r["avg_batch_size"] is None else f"{r['avg_batch_size']:.1f}"
        table.add_row(str(r["concurrency"]), f"{r['throughput_rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                      f"{r['p99_ms']:.2f}", batch, str(r["ok"]), str(r["refused"]), str(r["errors"]))
    return table
