"""Admission control on a real `deepseek serve`: a model holding all it can queue and run refuses new requests from
their headers (503 + Retry-After), without reading their bodies; once it drains it serves again."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from test_http import _call, _port

from conftest import handler_repo

BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}).encode()


def _head(port: int, extra: str = "") -> bytes:
    return (f"POST /v2/models/doubler/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n{extra}\r\n").encode()


def _reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def _wait_in_flight(url: str, count: int, timeout_s: float = 60) -> None:
    line = 'deepseek_requests_in_flight{model="doubler"} '
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = _call(url + "/metrics")[2].decode()
        held = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
        if held and held[0] >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never held {count} requests")


@pytest.fixture()
def slow_server(tmp_path):
    # limit = max_queue_size + max_batch_size * instances = 2 + 1 = 3 requests held at once; each batch takes 1.5 s (the idle keep-alive connection below must outlive 3 of them: uvicorn closes it after 5 s)
    repo = handler_repo(tmp_path / "models", "max_batch_size: 1\nmax_queue_size: 2\nparameters: {delay_s: 1.5}\n")
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    # the port is bound before the models load: "not ready" answers come first, then 200
    deadline = time.monotonic() + 60
    while True:
        try:
            if _call(url + "/v2/health/ready")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "the server never became ready"
        time.sleep(0.1)
    yield port, url
    proc.terminate()
    proc.wait(timeout=30)


def test_a_full_model_refuses_from_the_headers_and_serves_again_once_drained(slow_server):
    port, url = slow_server
    held = []
    for _ in range(3):  # one runs, two wait: the model is full
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(_head(port) + BODY)
        held.append(sock)
    # until the server holds all three (a fixed sleep raced on a loaded machine: the 4th request was admitted, and
    # answered "100 Continue")
    _wait_in_flight(url, 3)

    # A client that holds its body back until admitted is refused at once and never sends it.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_head(port, "Expect: 100-continue\r\n"))
        reply = _reply(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), reply
    assert b"retry-after: 1" in head.lower() and b"connection: close" in head.lower()
    assert "already queued or running" in json.loads(body)["error"]

    # A plain client is refused too, and its keep-alive connection carries a later request.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port) + BODY)
        assert _reply(sock).startswith(b"HTTP/1.1 503")
        for s in held:
            assert _reply(s).startswith(b"HTTP/1.1 200")
            s.close()
        sock.sendall(_head(port) + BODY)
        reply = _reply(sock)
        assert reply.startswith(b"HTTP/1.1 200") and json.loads(reply.partition(b"\r\n\r\n")[2])["outputs"][0]["data"] == [2.0, 4.0]

    # Admitted, a 100-continue client gets its go-ahead and its answer.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port, "Expect: 100-continue\r\n"))
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(BODY)
        assert _reply(sock).startswith(b"HTTP/1.1 200")
    text = _call(url + "/metrics")[2].decode()
    assert 'deepseek_requests_total{model="doubler",status="refused",version=""} 2.0' in text
