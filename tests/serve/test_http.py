"""The HTTP server for real: `deepseek serve` (uvicorn) on 127.0.0.1, tritonclient as the client, promtool on the rules."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import handler_repo

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def server(onnx_repo, tmp_path_factory):
    repo = tmp_path_factory.mktemp("served") / "models"
    shutil.copytree(onnx_repo, repo)
    handler_repo(repo, "max_batch_size: 1\nparameters: {delay_s: 0.001, fail_every: 3}\n")  # every 3rd call raises
    port, metrics_port = _port(), _port()
    with open(tmp_path_factory.mktemp("log") / "server.log", "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port),
                                 "--metrics-port", str(metrics_port)], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"server exited: {log.read()[-3000:]}")
            try:
                if _call(url + "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield {"url": url, "port": port, "metrics_port": metrics_port, "repo": repo, "proc": proc, "log": log}
        proc.terminate()
        proc.wait(timeout=30)


def _client(server):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server['port']}")


def _infer(client, model: str, x: np.ndarray, *, binary: bool = True, version: str = "", headers=None, parameters=None):
    import tritonclient.http as httpclient

    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput(client.get_model_metadata(model)["outputs"][0]["name"], binary_data=binary)
    result = client.infer(model, [inp], model_version=version, outputs=[out], headers=headers, parameters=parameters)
    return result.as_numpy(out.name()), result.get_response()["model_version"]


def test_tritonclient_talks_to_it_in_json_and_binary(server):
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("linear")
    meta = client.get_model_metadata("linear")
    assert meta["inputs"][0]["name"] == "x" and meta["inputs"][0]["shape"] == [-1, 4] and meta["versions"] == ["1", "2"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for binary in (True, False):
        y, version = _infer(client, "linear", x, binary=binary)
        assert version == "1" and np.allclose(y, x.sum(1, keepdims=True).repeat(3, 1))
        y2, version2 = _infer(client, "linear", x, binary=binary, version="2")
        assert version2 == "2" and np.allclose(y2, 2 * y)
    index = client.get_model_repository_index()
    assert {(m["name"], m["version"], m["state"]) for m in index} >= {("linear", "1", "READY"), ("linear", "2", "READY")}


def test_use_v2_header_and_traffic_split_over_http(server):
    client = _client(server)
    url = server["url"]
    status, _, body = _call(url + "/v2/models/linear/traffic", "PUT", json.dumps({"weights": {"1": 0.9, "2": 0.1}}).encode(),
                            {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["weights"] == {"1": 0.9, "2": 0.1}
    x = np.ones((1, 4), np.float32)
    versions = [_infer(client, "linear", x, headers={"X-Routing-Key": f"user{i}"})[1] for i in range(300)]
    assert 0.04 < versions.count("2") / 300 < 0.18
    assert _infer(client, "linear", x, headers={"X-Routing-Key": "user7"})[1] == versions[7]  # sticky
    status, _, body = _call(url + "/v2/models/linear/rollback", "POST")
    assert status == 200 and json.loads(body)["weights"] == {"1": 1.0}


def test_bad_requests_get_4xx_json_naming_the_field(server):
    url = server["url"] + "/v2/models/linear/infer"
    good = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    cases = [
        (b"{not json", 400, "malformed JSON"),
        (json.dumps({"inputs": [{"name": "z", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode(), 400, "exactly the tensors"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}).encode(), 400, "inputs[x].shape"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}).encode(), 400, "datatype"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}]}).encode(), 400, "non-numeric"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2]}]}).encode(), 400, "2 values"),
        (json.dumps({"inputs": []}).encode(), 400, "inputs"),
    ]
    for body, code, word in cases:
        status, _, payload = _call(url, "POST", body, {"Content-Type": "application/json"})
        assert status == code, (body, status, payload)
        assert word in json.loads(payload)["error"], (word, payload)
    status, _, payload = _call(server["url"] + "/v2/models/nope/infer", "POST", json.dumps(good).encode())
    assert status == 404 and "nope" in json.loads(payload)["error"]
    status, _, payload = _call(server["url"] + "/v2/models/linear/versions/9/infer", "POST", json.dumps(good).encode())
    assert status == 404 and "'9'" in json.loads(payload)["error"]
    # an oversized body is refused from its Content-Length, before it is read
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=30) as sock:
        sock.sendall(f"POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {65 * 2**20}\r\n"
                     "Content-Type: application/json\r\n\r\n".encode() + b"{" * 1024)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
                reply.lower().split(b"content-length:")[1].split(b"\r\n")[0]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413") and b"at most" in reply
    for path, method, body, code, word in (
            ("/v2/models/linear/traffic", "PUT", b"{oops", 400, "malformed JSON"),
            ("/v2/models/linear/traffic", "PUT", b'{"weights": {"1": -1}}', 400, "weights['1']"),
            ("/v2/models/nope/traffic", "GET", None, 404, "nope"),
            ("/v2/models/linear/promote", "POST", b'{"version": "7"}', 404, "'7'"),
            ("/v2/repository/models/linear/load", "POST", b"[1, 2]", 400, "expected an object")):
        status, _, payload = _call(server["url"] + path, method, body)
        assert status == code and word in json.loads(payload)["error"], (path, status, payload)
    status, _, _ = _call(url, "POST", json.dumps(good).encode())
    assert status == 200  # and it still serves


def test_metrics_on_both_ports_with_conventional_names(server):
    _call(server["url"] + "/v2/models/linear/infer", "POST", json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode())
    for port in (server["port"], server["metrics_port"]):
        status, _, text = _call(f"http://127.0.0.1:{port}/metrics")
        text = text.decode()
        assert status == 200
        for name in ('deepseek_requests_total{model="linear",status="ok",version="1"}', "deepseek_request_duration_seconds_bucket",
                     "deepseek_queue_duration_seconds_bucket", "deepseek_batch_size_bucket", 'deepseek_requests_in_flight{model="linear"}',
                     'deepseek_model_loaded{model="linear",version="2"} 1.0', "deepseek_process_cpu_utilisation_ratio"):
            assert name in text, name
        assert 'status="bad_request"' in text or port == server["metrics_port"]


def test_model_control_unload_and_load(server):
    client = _client(server)
    client.unload_model("linear")
    assert not client.is_model_ready("linear")
    client.load_model("linear")
    assert client.is_model_ready("linear") and _infer(client, "linear", np.ones((1, 4), np.float32))[1] in ("1", "2")


def test_status_command_shows_the_served_versions(server):
    done = subprocess.run([sys.executable, "-m", "deepseek", "serve", "status", server["url"]], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "linear" in done.stdout and "READY" in done.stdout


def test_alert_rules_pass_promtool_and_the_dashboard_parses(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; make install adds it)")
    done = subprocess.run([sys.executable, "-m", "deepseek", "serve", "alert-rules", "-o", str(tmp_path / "rules.yml"),
                           "--grafana", str(tmp_path / "dashboard.json")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    check = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout
    text = (tmp_path / "rules.yml").read_text()
    assert "> 0.8" in text and "> 0.5" in text and "> 0.02" in text and "> 0.005" in text and "> 0.9" in text
    dashboard = json.loads((tmp_path / "dashboard.json").read_text())
    assert {p["title"] for p in dashboard["panels"]} >= {"p99 latency", "error ratio", "CPU utilisation"}


def test_bad_serve_arguments_are_one_line(tmp_path):
    for args, word in ((["serve", str(tmp_path / "none")], "MODEL_REPO"), (["serve", "status"], "URL"),
                       (["serve", "status", "http://127.0.0.1:9"], "running")):
        done = subprocess.run([sys.executable, "-m", "deepseek", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and word in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_serve_bench_sweeps_concurrency_against_a_running_server(server, tmp_path):
    done = subprocess.run([sys.executable, "-m", "deepseek", "serve", "bench", server["url"], "--model", "linear",
                           "--concurrency", "1,4", "--requests", "24", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    assert [r["concurrency"] for r in result["levels"]] == [1, 4]
    for row in result["levels"]:
        assert row["ok"] == 24 and row["errors"] == 0 and row["p50_ms"] <= row["p99_ms"]
        assert row["avg_batch_size"] is not None and 1 <= row["avg_batch_size"] <= 16
    assert "requests/s" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "deepseek", "serve", "bench", server["url"], "--model", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--model" in bad.stderr


def test_a_handler_that_raises_fails_only_its_request_with_500_json(server):
    url = server["url"] + "/v2/models/doubler/infer"
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}).encode()
    statuses = []
    for _ in range(9):
        status, _, payload = _call(url, "POST", body)
        statuses.append(status)
        if status == 500:
            assert "deliberately faulty" in json.loads(payload)["error"]
        else:
            assert status == 200 and json.loads(payload)["outputs"][0]["data"] == [2.0, 4.0]
    assert statuses.count(500) == 3 and statuses.count(200) == 6  # every 3rd model call (the warm-up was one)
    text = _call(server["url"] + "/metrics")[2].decode()
    assert 'deepseek_requests_total{model="doubler",status="error",version="1"} 3.0' in text
    assert _call(server["url"] + "/v2/health/ready")[0] == 200  # the server is fine
