"""A load generator for KServe v2 servers: N keep-alive connections, each sending the same request back to back.

Runs in its own process (``deepseek serve bench`` starts it so), on raw asyncio streams: the client's own cost
stays small and constant, so the figures are the server's. Latency is per request, from the first byte sent to
the last byte read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .._core.checks import check_number
from .config import DATATYPES, NUMPY_TO_DATATYPE


@dataclasses.dataclass
class LoadResult:
    concurrency: int
    requests: int
    ok: int
    refused: int  # 429 / 503: turned away by a full queue
    errors: int  # anything else
    seconds: float
    latencies_ms: list[float]
    refusal_ms: list[float]

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        ref = np.array(self.refusal_ms) if self.refusal_ms else np.array([np.nan])
        return {"concurrency": self.concurrency, "requests": self.requests, "ok": self.ok, "refused": self.refused,
                "errors": self.errors, "throughput_rps": self.ok / self.seconds if self.seconds else 0.0,
                "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                "p99_ms": float(np.percentile(lat, 99)), "max_refusal_ms": float(np.max(ref))}


def v2_binary_request(inputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """A v2 request with binary tensors (and binary outputs): the body and its JSON header's length."""
    specs, blobs = [], []
    for name, array in inputs.items():
        blob = np.ascontiguousarray(array).tobytes()
        specs.append({"name": name, "shape": list(array.shape), "datatype": NUMPY_TO_DATATYPE[array.dtype.name],
                      "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps({"inputs": specs, "parameters": {"binary_data_output": True}}).encode()
    return head + b"".join(blobs), len(head)


def v2_json_request(inputs: dict[str, np.ndarray]) -> bytes:
    """A v2 request with JSON tensors (what a client without the binary extension sends)."""
    specs = [{"name": n, "shape": list(a.shape), "datatype": NUMPY_TO_DATATYPE[a.dtype.name], "data": a.reshape(-1).tolist()}
             for n, a in inputs.items()]
    return json.dumps({"inputs": specs}).encode()


def sample_inputs(metadata: dict[str, Any], rows: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of ``rows`` rows matching a v2 model metadata answer (-1 dimensions become 1)."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in metadata["inputs"]:
        shape = [rows, *(1 if d == -1 else d for d in spec["shape"][1:])]
        dtype = np.dtype(DATATYPES[spec["datatype"]])
        out[spec["name"]] = rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One response's status and whether the server closes the connection after it (its body is read and dropped)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, _, value = line.decode("latin-1").partition(":")
        key = key.strip().lower()
        if key == "content-length":
            length = int(value.strip())
        elif key == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _connection(host: str, port: int, head: bytes, body: bytes, count: int, result: LoadResult,
                      deadline: float, expect_continue: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            if expect_continue:  # headers first; the body only once the server answers 100 Continue
                writer.write(head)
                await writer.drain()
                status, close = await _read_response(reader)
                if status == 100:
                    writer.write(body)
                    await writer.drain()
                    status, close = await _read_response(reader)
                else:
                    close = True  # the body was never sent: this connection cannot carry another request
            else:
                writer.write(head + body)
                await writer.drain()
                status, close = await _read_response(reader)
            ms = (time.perf_counter() - started) * 1000
            if status == 200:
                result.ok += 1
                result.latencies_ms.append(ms)
            elif status in (429, 503):
                result.refused += 1
                result.refusal_ms.append(ms)
            else:
                result.errors += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        result.errors += 1
    finally:
        writer.close()


def run_load(url: str, model: str, inputs: dict[str, np.ndarray], *, concurrency: int, requests: int,
             version: str | None = None, timeout_s: float = 300.0, binary: bool = True,
             expect_continue: bool = False) -> LoadResult:
    """Send ``requests`` requests over ``concurrency`` connections; wait for every answer. ``binary``: the v2
    binary-tensor extension (else JSON tensors); ``expect_continue``: send ``Expect: 100-continue`` and the body
    only once the server accepts the request (as curl does for large bodies), so a refusal costs no upload."""
    check_number(concurrency, "concurrency", minimum=1, maximum=4096, integer=True)
    check_number(requests, "requests", minimum=1, integer=True)
    check_number(timeout_s, "timeout_s", above=0)
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    if binary:
        body, head_len = v2_binary_request(inputs)
        extra = f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {head_len}\r\n"
    else:
        body, extra = v2_json_request(inputs), "Content-Type: application/json\r\n"
    if expect_continue:
        extra += "Expect: 100-continue\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
    result = LoadResult(concurrency, requests, 0, 0, 0, 0.0, [], [])
    per = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    async def main() -> None:
        deadline = time.monotonic() + timeout_s
        await asyncio.gather(*(_connection(host, port, head, body, n, result, deadline, expect_continue)
                               for n in per if n))

    started = time.perf_counter()
    asyncio.run(main())
    result.seconds = time.perf_counter() - started
    return result
