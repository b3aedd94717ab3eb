"""deploy/: the manifests parse, their probe paths answer on a real server, the shipped alert rules are what the
code writes, and two replicas of the same repository serve behind one balancing client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _start(repo: Path, port: int, log: Path) -> subprocess.Popen:
    out = open(log, "w")  # noqa: SIM115 - closed with the process in _stop
    proc = subprocess.Popen([sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port)], stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.log = out  # type: ignore[attr-defined]
    return proc


def _wait_ready(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        assert proc.poll() is None, "server exited"
        try:
            if _get(f"http://127.0.0.1:{port}/v2/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready in 30 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    proc.log.close()  # type: ignore[attr-defined]


def test_manifests_parse_and_name_the_v2_probe_paths():
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "deployment.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    hpa_metric = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert hpa_metric == "deepseek_requests_in_flight"
    ci = yaml.safe_load((DEPLOY / "gitlab-ci.yml").read_text())
    assert ci["stages"] == ["test", "gate", "build"]
    assert any("deepseek evaluate --model $MODEL_PATH" in line for line in ci["accuracy-gate"]["script"])
    assert "ENTRYPOINT" in (DEPLOY / "Dockerfile").read_text()


def test_shipped_rules_and_dashboard_are_what_the_code_writes():
    from deepseek.serve.slo import alert_rules, grafana_dashboard

    assert yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text()) == alert_rules()
    assert json.loads((DEPLOY / "grafana" / "dashboard.json").read_text()) == grafana_dashboard()


def test_two_replicas_serve_the_same_repository_behind_one_balancing_client(onnx_repo, tmp_path):
    import numpy as np
    import tritonclient.http as httpclient

    ports = [_port(), _port()]
    procs = [_start(onnx_repo, p, tmp_path / f"replica{i}.log") for i, p in enumerate(ports)]
    try:
        for port, proc in zip(ports, procs):
            _wait_ready(port, proc)
            for path in ("/v2/health/live", "/v2/health/ready"):  # what the probes ask
                assert _get(f"http://127.0.0.1:{port}{path}")[0] == 200
        clients = [httpclient.InferenceServerClient(url=f"127.0.0.1:{p}") for p in ports]
        x = np.ones((2, 4), np.float32)
        for i in range(40):  # round robin, as a load balancer would
            inp = httpclient.InferInput("x", [2, 4], "FP32")
            inp.set_data_from_numpy(x)
            result = clients[i % 2].infer("linear", [inp])
            assert np.allclose(result.as_numpy(result.get_response()["outputs"][0]["name"]), 4.0)
        for port in ports:
            text = _get(f"http://127.0.0.1:{port}/metrics")[1].decode()
            assert 'deepseek_requests_total{model="linear",status="ok",version="1"} 20.0' in text
    finally:
        for proc in procs:
            _stop(proc)


def test_workers_share_one_port_and_sum_their_metrics(onnx_repo, tmp_path):
    port, metrics_port = _port(), _port()
    out = open(tmp_path / "workers.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "deepseek", "serve", str(onnx_repo), "--port", str(port),
                             "--workers", "2", "--metrics-port", str(metrics_port)], stdout=out, stderr=subprocess.STDOUT)
    proc.log = out  # type: ignore[attr-defined]
    try:
        _wait_ready(port, proc)
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]}).encode()
        for _ in range(10):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/linear/infer", data=body, method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert json.loads(resp.read())["outputs"][0]["data"] == [4.0, 4.0, 4.0]
        time.sleep(1.0)  # the gauges' sampler writes every 0.5 s
        # Whichever worker answers the scrape (and the supervisor's metrics port) reports both workers' requests.
        for url in [f"http://127.0.0.1:{port}/metrics"] * 4 + [f"http://127.0.0.1:{metrics_port}/metrics"]:
            text = _get(url)[1].decode()
            assert 'deepseek_requests_total{model="linear",status="ok",version="1"} 10.0' in text, text[:2000]
            assert 'deepseek_model_loaded{model="linear",version="2"} 1.0' in text
            assert 'deepseek_requests_in_flight{model="linear"} 0.0' in text
            assert "deepseek_process_cpu_utilisation_ratio" in text
            assert 'deepseek_batch_size_count{model="linear",version="1"} 10.0' in text
    finally:
        _stop(proc)
