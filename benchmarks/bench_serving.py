"""Serving MobileNetV2 (real weights) as ONNX FP32 and INT8: dynamic batching on vs off, the HTTP overhead over a
bare Predictor, plain FastAPI + ONNX Runtime as the floor, overload against a bounded queue, and hot reloads under
load. One run; loopback; the same model files and the same load generator (its own process) for every row.

    python benchmarks/bench_serving.py [--concurrency 1,4,16,32] [--requests 400] [--smoke]

Rows per artifact: ``deepseek serve`` with ``max_batch_size: 1`` (batching off) and ``max_batch_size: 16,
max_queue_delay_ms: 2`` (on), and a plain FastAPI app that runs ONNX Runtime per request (same v2 binary payload,
no batching, no queue). Overhead: p50 of ``/infer`` at concurrency 1 (batching off) minus the bare
``deepseek.load(...).run`` p50 in this process. Overload: 2,000 requests at concurrency 500 against a queue of 64,
with plain clients and with ``Expect: 100-continue`` clients: answered 200 or refused (503), refusal latency, server
RSS before and after, and a normal request afterwards.
Hot reload: 20 ``POST /v2/repository/models/m/load`` while 8 connections keep sending; failed requests counted.
Writes benchmarks/results/serving.json and serving.png. ``--smoke``: a tiny conv net on 32x32 inputs, concurrency
1 and 4, 20 requests per level; the rows that start servers (deepseek, plain FastAPI, Ray Serve) only for the INT8
artifact, whose code is the FP32 one's; a smaller overload (200 requests at concurrency 50, queue 8), 3 hot
reloads, 5 load/unload cycles.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from _common import add_smoke_flag, results_dir, scratch_dir, write_results

PEER = '''
import sys, numpy as np, onnxruntime as ort, uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from deepseek.serve.protocol import encode_response, parse_request
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
app = FastAPI()
@app.get("/v2/health/ready")
def ready():
    return {"ready": True}
@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = await request.body()
    parsed, tensors = parse_request(body, request.headers.get("inference-header-content-length"))
    outputs = dict(zip(names, session.run(None, tensors)))
    out, head = encode_response(name, "1", parsed.get("id"), outputs, parsed)
    headers = {"inference-header-content-length": str(head)} if head else {}
    return Response(out, headers=headers, media_type="application/octet-stream")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
'''

LITSERVE = '''
import sys, numpy as np, onnxruntime as ort, litserve as ls

class Classifier(ls.LitAPI):
    def setup(self, device):
        self.session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        self.output = self.session.get_outputs()[0].name
    def decode_request(self, request):  # the parsed v2 JSON body
        spec = request["inputs"][0]
        return np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"])
    def batch(self, inputs):
        return np.concatenate(inputs)
    def predict(self, x):
        return self.session.run(None, {"input": x})[0]
    def unbatch(self, output):
        return [row[None] for row in output]
    def encode_response(self, y):
        return {"model_name": "m", "outputs": [{"name": self.output, "datatype": "FP32", "shape": list(y.shape),
                                                "data": y.reshape(-1).tolist()}]}

if __name__ == "__main__":  # LitServer spawns its inference worker: the main module must be import-safe
    batch = int(sys.argv[3])
    api = Classifier(max_batch_size=batch, batch_timeout=0.002 if batch > 1 else 0.0, api_path="/v2/models/m/infer")
    ls.LitServer(api, accelerator="cpu", healthcheck_path="/health").run(port=int(sys.argv[2]), log_level="warning",
                                                                        generate_client_file=False)
'''

RAY_SERVE = '''
import sys, time, numpy as np, onnxruntime as ort, ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from deepseek.serve.protocol import encode_response, parse_request

@serve.deployment(max_ongoing_requests=1024)
class Classifier:
    def __init__(self, path):
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    @serve.batch(max_batch_size=int(sys.argv[3]), batch_wait_timeout_s=0.002 if int(sys.argv[3]) > 1 else 0.0)
    async def run(self, xs):
        out = self.session.run(None, {"input": np.concatenate(xs)})[0]
        return [row[None] for row in out]

    async def __call__(self, request: Request):
        if request.method == "GET":
            return JSONResponse({"ready": True})
        body = await request.body()
        parsed, tensors = parse_request(body, request.headers.get("inference-header-content-length"))
        y = await self.run(tensors["input"])
        out, head = encode_response("m", "1", parsed.get("id"), {self.names[0]: y}, parsed)
        headers = {"inference-header-content-length": str(head)} if head else {}
        return Response(out, headers=headers, media_type="application/octet-stream")

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})
serve.run(Classifier.bind(sys.argv[1]), route_prefix="/v2/models/m")
while True:
    time.sleep(3600)
'''


def build_models(work: Path, smoke: bool) -> dict[str, Path]:
    import torch

    import deepseek
    from deepseek import assets
    from deepseek.quantization import quantize_static_onnx

    if smoke:  # a tiny conv net on 32x32 crops: the same export + INT8 path in seconds
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                    torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
        size, calib = 32, assets.photo_calibration_batch(8, size=32)
    else:
        model, size, calib = assets.mobilenet_v2(), 224, assets.photo_calibration_batch(128)
    fp32 = deepseek.export_onnx(model, torch.randn(1, 3, size, size), work / "fp32.onnx", input_names=["input"]).path
    int8 = quantize_static_onnx(model, calib, work / "int8.onnx", method="percentile", input_names=["input"]).path
    return {"fp32": fp32, "int8": int8}


def repository(work: Path, label: str, artifact: Path, config: str) -> Path:
    root = work / f"repo_{label}"
    (root / "m" / "1").mkdir(parents=True)
    (root / "m" / "1" / "model.onnx").write_bytes(artifact.read_bytes())
    (root / "m" / "config.yaml").write_text(config)
    return root


def start(command: list[str], url: str, ready_path: str = "/v2/health/ready") -> subprocess.Popen:
    from deepseek.serve.bench import wait_ready

    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the server; closed by stop()
    # its own process group: LitServe's inference workers are its children and must go when it goes
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"},
                            start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    wait_ready(url, proc, log, path=ready_path, timeout_s=180)
    return proc


def stop(proc: subprocess.Popen) -> None:
    import signal

    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.log.close()  # type: ignore[attr-defined]


def sweep(url: str, levels: list[int], requests: int, x: np.ndarray, batches: bool = True,
          binary: bool = True) -> list[dict[str, Any]]:
    """One row per concurrency level; ``batches``: read the average batch size from the server's /metrics;
    ``binary``: v2 binary tensors (else JSON tensors, which every peer reads)."""
    from deepseek.serve.bench import batch_counters
    from deepseek.serve.loadgen import run_load

    run_load(url, "m", {"input": x}, concurrency=1, requests=10, binary=binary)  # warm-up
    out = []
    for level in levels:
        before = batch_counters(url, "m") if batches else (0.0, 0.0)
        row = run_load(url, "m", {"input": x}, concurrency=level, requests=max(requests, 2 * level),
                       binary=binary).summary()
        after = batch_counters(url, "m") if batches else (0.0, 0.0)
        row["avg_batch_size"] = (after[0] - before[0]) / (after[1] - before[1]) if after[1] > before[1] else None
        print(f"    concurrency {level:4d}: {row['throughput_rps']:7.1f} req/s  p50 {row['p50_ms']:7.2f}  "
              f"p99 {row['p99_ms']:7.2f} ms  batch {row['avg_batch_size'] or 1:.1f}  errors {row['errors']}", flush=True)
        out.append(row)
    return out


def overload(url: str, pid: int, x: np.ndarray, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` at ``concurrency`` against a small queue, once with plain clients (the body always sent) and
    once with clients that send ``Expect: 100-continue`` (the body only once admitted); then a normal request."""
    import psutil

    from deepseek.serve.loadgen import run_load

    # the steady state first: full batches under normal load (ONNX Runtime's arena keeps its batch-16 high-water
    # mark), so what overload adds on top of serving is what the comparison shows
    run_load(url, "m", {"input": x}, concurrency=32, requests=max(64, requests // 10))
    out: dict[str, Any] = {"rss_steady_mb": psutil.Process(pid).memory_info().rss / 2**20}
    for label, expect in (("plain", False), ("expect_100_continue", True)):
        load = run_load(url, "m", {"input": x}, concurrency=concurrency, requests=requests, expect_continue=expect)
        refusals = np.array(load.refusal_ms or [np.nan])
        out[label] = {**load.summary(), "answered": load.ok + load.refused,
                      "refusal_p50_ms": float(np.percentile(refusals, 50)),
                      "refusal_p99_ms": float(np.percentile(refusals, 99)),
                      "rss_after_mb": psutil.Process(pid).memory_info().rss / 2**20}
    after = run_load(url, "m", {"input": x}, concurrency=1, requests=5).summary()
    return {**out, "served_normally_after": after["ok"] == 5}


def hot_reload(url: str, x: np.ndarray, swaps: int) -> dict[str, Any]:
    from deepseek.serve.loadgen import LoadResult, run_load

    results: list[LoadResult] = []
    stop_flag = threading.Event()

    def load() -> None:
        while not stop_flag.is_set():
            results.append(run_load(url, "m", {"input": x}, concurrency=8, requests=64))

    thread = threading.Thread(target=load)
    thread.start()
    timings = []
    for _ in range(swaps):
        started = time.perf_counter()
        req = urllib.request.Request(url + "/v2/repository/models/m/load", method="POST",
                                     data=json.dumps({"parameters": {"version": "1"}}).encode())
        with urllib.request.urlopen(req, timeout=120) as resp:
            assert resp.status == 200
        timings.append(time.perf_counter() - started)
    stop_flag.set()
    thread.join()
    return {"swaps": swaps, "requests": sum(r.ok + r.errors + r.refused for r in results),
            "failed": sum(r.errors + r.refused for r in results), "median_swap_s": float(np.median(timings))}


FAULTY = '''
import numpy as np
from deepseek.serve import TensorHandler


class FaultyEveryThird(TensorHandler):
    """The real model, but every third batch raises: a bad release."""

    calls = 0

    def predict(self, batch):
        FaultyEveryThird.calls += 1
        if self.config.parameters.get("faulty") and FaultyEveryThird.calls % 3 == 0:
            raise RuntimeError("bad release")
        return super().predict(batch)
'''


def canary(work: Path, artifact: Path, x: np.ndarray, requests: int, min_requests: int) -> dict[str, Any]:
    """A faulty v2 at 10% of traffic (sticky by user): requests until the router rolls it back, and the bad
    responses users saw."""
    from deepseek.serve import ModelRouter
    from deepseek.serve.batcher import HandlerError

    root = work / "repo_canary"
    for version in ("1", "2"):
        (root / "m" / version).mkdir(parents=True)
        (root / "m" / version / "model.onnx").write_bytes(artifact.read_bytes())
    (root / "m" / "handler.py").write_text(FAULTY)
    (root / "m" / "config.yaml").write_text("handler: handler.py:FaultyEveryThird\nmax_batch_size: 1\n"
                                           f"default_version: '1'\ncanary: {{min_requests: {min_requests}, window_s: 60}}\n")
    (root / "m" / "2" / "config.yaml").write_text("parameters: {faulty: true}\n")
    router = ModelRouter(root, seed=0)
    router.set_traffic("m", {"1": 0.9, "2": 0.1})
    bad = sent = 0
    started = time.perf_counter()
    try:
        while sent < requests and router.traffic("m") != {"1": 1.0}:
            sent += 1
            try:
                router.infer("m", {"input": x}, routing_key=f"user{sent}")
            except HandlerError:
                bad += 1
        rolled_back = router.traffic("m") == {"1": 1.0}
        reason = next((e["reason"] for e in reversed(router.events("m")) if e["event"] == "rollback"), None)
    finally:
        router.close()
    return {"canary_share": 0.1, "requests_until_rollback": sent, "bad_responses": bad, "rolled_back": rolled_back,
            "seconds": time.perf_counter() - started, "reason": reason}


def load_unload(work: Path, artifact: Path, cycles: int) -> dict[str, Any]:
    """RSS of this process over ``cycles`` load/unload cycles of one version (after a warm-up cycle)."""
    import gc

    import psutil

    from deepseek.serve import ModelRouter

    root = repository(work, "cycles", artifact, "max_batch_size: 4\n")
    router = ModelRouter(root, load=False)
    process = psutil.Process()

    def cycle() -> None:
        mv = router.load("m", "1")
        router.unload("m", "1")
        mv.batcher.close(wait=True)  # what the background retirement does, awaited here

    cycle()
    gc.collect()
    before = process.memory_info().rss
    for _ in range(cycles):
        cycle()
    gc.collect()
    after = process.memory_info().rss
    return {"cycles": cycles, "rss_before_mb": before / 2**20, "rss_after_mb": after / 2**20,
            "growth": (after - before) / before}


def bare_predictor_ms(path: Path, x: np.ndarray, runs: int) -> float:
    from deepseek.bench import measure
    from deepseek.runtime import load

    predictor = load(path, threads=2)
    return measure(lambda: predictor.run({"input": x}), warmup=5, runs=runs).median_ms


def json_rows(results: dict[str, Any], work: Path, artifact: Path, levels: list[int], requests: int,
              x: np.ndarray) -> None:
    """deepseek (batching on) vs LitServe (batching on) vs plain FastAPI + ORT, all on v2 JSON tensors."""
    import importlib.util

    from deepseek.serve.bench import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    repo = repository(work, "json", artifact, "max_batch_size: 16\nmax_queue_delay_ms: 2\nmax_queue_size: 1024\n")
    servers = [("deepseek, batching on", [sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port)],
                "/v2/health/ready", True)]
    peer = work / "peer.py"
    servers.append(("plain FastAPI + ORT", [sys.executable, str(peer), str(artifact), str(port)], "/v2/health/ready", False))
    if importlib.util.find_spec("litserve") is not None:
        lit = work / "litserve_peer.py"
        lit.write_text(LITSERVE)
        servers.append(("LitServe, batching on", [sys.executable, str(lit), str(artifact), str(port), "16"], "/health", False))
    else:
        results["skipped"].append("LitServe: pip install litserve")
    for label, command, ready, batches in servers:
        proc = start(command, url, ready)
        print(f"int8 JSON tensors: {label}", flush=True)
        try:
            results["sweeps"][f"int8 JSON: {label}"] = sweep(url, levels, requests, x, batches=batches, binary=False)
        finally:
            stop(proc)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, rows in results["sweeps"].items():
        conc = [r["concurrency"] for r in rows]
        axes[0].plot(conc, [r["throughput_rps"] for r in rows], marker="o", label=label)
        axes[1].plot(conc, [r["p99_ms"] for r in rows], marker="o", label=label)
    for ax, title in zip(axes, ("throughput (requests/s)", "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.text(0.01, 0.01, results["machine"], fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,16,32")
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--runs", type=int, default=200, help="timed calls of the bare Predictor")
    add_smoke_flag(parser)
    args = parser.parse_args()
    levels = [1, 4] if args.smoke else [int(c) for c in args.concurrency.split(",")]
    requests, runs = (20, 10) if args.smoke else (args.requests, args.runs)
    overload_requests, overload_conc, queue, swaps = (200, 50, 8, 3) if args.smoke else (2000, 500, 64, 20)

    import importlib.util

    from deepseek._core import machine as _machine
    from deepseek.serve.bench import free_port

    work = scratch_dir("bench-serving-")
    artifacts = build_models(work, args.smoke)
    size = 32 if args.smoke else 224
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    results: dict[str, Any] = {"machine": _machine.describe(_machine.summary(threads=2)), "levels": levels, "requests": requests,
                               "sweeps": {}, "overhead": {}, "smoke": args.smoke, "skipped": []}
    configs = {"batching off": "max_batch_size: 1\nmax_queue_size: 1024\n",
               "batching on": "max_batch_size: 16\nmax_queue_delay_ms: 2\nmax_queue_size: 1024\n"}
    # smoke: every server row once, on one artifact (a server process per row is most of the run's time)
    served = {"int8": artifacts["int8"]} if args.smoke else artifacts
    for name, artifact in served.items():
        bare = bare_predictor_ms(artifact, x, runs)
        for label, config in configs.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            repo = repository(work, f"{name}_{label.replace(' ', '_')}", artifact, config)
            proc = start([sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port)], url)
            print(f"{name} deepseek serve, {label}", flush=True)
            try:
                results["sweeps"][f"{name} deepseek, {label}"] = rows = sweep(url, levels, requests, x)
                if label == "batching off":
                    results["overhead"][name] = {"bare_predictor_p50_ms": bare, "infer_p50_ms": rows[0]["p50_ms"],
                                                 "overhead_ms": rows[0]["p50_ms"] - bare}
            finally:
                stop(proc)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        peer = work / "peer.py"
        peer.write_text(PEER)
        proc = start([sys.executable, str(peer), str(artifact), str(port)], url)
        print(f"{name} plain FastAPI + ONNX Runtime", flush=True)
        try:
            results["sweeps"][f"{name} plain FastAPI + ORT"] = sweep(url, levels, requests, x, batches=False)
        finally:
            stop(proc)
        if importlib.util.find_spec("ray") is not None:  # the same binary v2 payload, @serve.batch like ours
            ray_peer = work / "ray_peer.py"
            ray_peer.write_text(RAY_SERVE)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start([sys.executable, str(ray_peer), str(artifact), str(port), "16"], url, "/v2/models/m")
            print(f"{name} Ray Serve, batching on", flush=True)
            try:
                results["sweeps"][f"{name} Ray Serve, batching on"] = sweep(url, levels, requests, x, batches=False)
            finally:
                stop(proc)
        elif "Ray Serve: pip install 'ray[serve]'" not in results["skipped"]:
            results["skipped"].append("Ray Serve: pip install 'ray[serve]'")
        if name == "int8":  # peers that read only JSON tensors: every server gets the same JSON requests
            json_rows(results, work, artifact, levels, requests, x)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    repo = repository(work, "overload", artifacts["int8"], f"max_batch_size: 16\nmax_queue_delay_ms: 2\nmax_queue_size: {queue}\n")
    proc = start([sys.executable, "-m", "deepseek", "serve", str(repo), "--port", str(port)], url)
    try:
        print(f"overload: {overload_requests} requests at concurrency {overload_conc}, queue {queue}", flush=True)
        results["overload"] = {"queue": queue, **overload(url, proc.pid, x, overload_requests, overload_conc)}
        print(f"    {results['overload']}", flush=True)
        print(f"hot reload: {swaps} swaps under load", flush=True)
        results["hot_reload"] = hot_reload(url, x, swaps)
        print(f"    {results['hot_reload']}", flush=True)
    finally:
        stop(proc)

    print("canary: a faulty v2 at 10% of traffic", flush=True)
    results["canary"] = canary(work, artifacts["int8"], x, *((400, 5) if args.smoke else (2000, 20)))
    print(f"    {results['canary']}", flush=True)
    cycles = 5 if args.smoke else 100
    print(f"{cycles} load/unload cycles", flush=True)
    results["load_unload"] = load_unload(work, artifacts["int8"], cycles)
    print(f"    {results['load_unload']}", flush=True)

    for name in served:
        on, off = results["sweeps"][f"{name} deepseek, batching on"], results["sweeps"][f"{name} deepseek, batching off"]
        floor = results["sweeps"][f"{name} plain FastAPI + ORT"]
        print(f"{name}: batching on/off throughput at concurrency {levels[-1]}: "
              f"{on[-1]['throughput_rps'] / off[-1]['throughput_rps']:.2f}x; vs plain FastAPI + ORT "
              f"{on[-1]['throughput_rps'] / floor[-1]['throughput_rps']:.2f}x; overhead "
              f"{results['overhead'][name]['overhead_ms']:.2f} ms", flush=True)
    write_results(args, "serving.json", results)
    plot(results, results_dir(args) / "serving.png")


if __name__ == "__main__":
    main()
