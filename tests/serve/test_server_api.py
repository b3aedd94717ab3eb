"""``deepseek.serve.server``: what ``deepseek serve`` does, from Python — run a repository (metrics on a port of its
own, port 0 for a free one), ask a running server its status, and refuse bad arguments naming them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from deepseek import InvalidArgumentError
from deepseek.serve.server import check_repository, listen, run, server_url, status


def test_run_serves_from_python_and_status_reads_it(onnx_repo, tmp_path):
    code = ("import sys; from deepseek.serve.server import run\n"
            "def ready(router, url, metrics_url):\n"
            "    print('READY', url, metrics_url, sorted(router.scan()), flush=True)\n"
            f"run({str(onnx_repo)!r}, port=0, metrics_port=0, progress=False, on_ready=ready)\n")
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            for _ in range(600):
                lines = [line for line in log.read_text().splitlines() if line.startswith("READY")]
                if lines or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert lines, log.read_text()[-3000:]
            _, url, metrics_url, *_ = lines[0].split(" ", 3)
            found = None
            for _ in range(300):
                try:
                    found = status(url)
                    break
                except InvalidArgumentError:
                    time.sleep(0.1)  # on_ready runs just before uvicorn accepts
            assert found is not None and found["live"] is True and found["url"] == url
            assert {m["state"] for m in found["models"]} == {"READY"} and found["models"]
            with urllib.request.urlopen(metrics_url, timeout=10) as resp:
                assert b"deepseek_" in resp.read()  # the metrics port of its own answers
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_bad_arguments_name_the_python_argument(onnx_repo, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"^repository: "):
        run(tmp_path / "empty")
    with pytest.raises(InvalidArgumentError, match=r"^repository: "):
        check_repository(tmp_path / "missing")
    assert check_repository(tmp_path / "empty", allow_empty=True) == tmp_path / "empty"
    with pytest.raises(InvalidArgumentError, match=r"^workers: "):
        run(onnx_repo, workers=0)
    with pytest.raises(InvalidArgumentError, match=r"^poll: "):
        run(onnx_repo, poll=-1)
    with pytest.raises(InvalidArgumentError, match=r"^metrics_port: .*other than port"):
        run(onnx_repo, port=8123, metrics_port=8123)
    with pytest.raises(InvalidArgumentError, match=r"^port: "):
        listen("127.0.0.1", 70000)
    taken = listen("127.0.0.1", 0)
    try:
        with pytest.raises(InvalidArgumentError, match=r"^port: .*free to listen"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    with pytest.raises(InvalidArgumentError, match=r"^url: "):
        server_url("http://exa mple:80")
    assert server_url("127.0.0.1:8000/") == "http://127.0.0.1:8000"
    with pytest.raises(InvalidArgumentError, match=r"^url: .*running deepseek/KServe v2 server"):
        status(f"127.0.0.1:{_closed_port()}")


def _closed_port() -> int:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port
