"""ModelRouter in process: versions, routing, traffic split, canary rollback, hot swaps, batching, bounded queue."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import handler_repo
from deepseek.serve import ModelConfig, ModelNotFound, ModelRouter, QueueFull
from deepseek.serve.batcher import HandlerError

X = np.ones((1, 4), dtype=np.float32)


def _which(out: dict[str, np.ndarray]) -> str:
    """Version 1 answers 4 per row, version 2 answers 8."""
    return {4.0: "1", 8.0: "2"}[float(next(iter(out.values()))[0, 0])]


def test_serving_onnx_needs_no_torch(onnx_repo):
    import subprocess

    code = ("import sys, numpy as np; from deepseek.serve import ModelRouter; "
            f"r = ModelRouter({str(onnx_repo)!r}); out = r.infer('linear', {{'x': np.ones((2, 4), np.float32)}}); "
            "print(float(out[next(iter(out))][0, 0]), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4.0", "False"]


def test_versions_default_pinning_and_metadata_rules(onnx_repo):
    router = ModelRouter(onnx_repo)
    try:
        assert router.models() == {"linear": ["1", "2"]} and router.default_version("linear") == "1"
        assert _which(router.infer("linear", {"x": X})) == "1"
        assert _which(router.infer("linear", {"x": X}, version="2")) == "2"
        router.route_by("linear", "use_v2", "2")  # SPEC.md §8: request metadata use_v2 -> v2
        assert _which(router.infer("linear", {"x": X}, metadata={"use_v2": True})) == "2"
        assert _which(router.infer("linear", {"x": X}, metadata={"use_v2": "true"})) == "2"
        assert _which(router.infer("linear", {"x": X}, metadata={"use_v2": "false"})) == "1"
        with pytest.raises(ModelNotFound, match="version '3'"):
            router.infer("linear", {"x": X}, version="3")
        with pytest.raises(ModelNotFound, match="'nope'"):
            router.infer("nope", {"x": X})
    finally:
        router.close()


def test_traffic_split_is_weighted_and_sticky_by_routing_key(onnx_repo):
    router = ModelRouter(onnx_repo, seed=0)
    try:
        router.set_traffic("linear", {"1": 0.9, "2": 0.1})
        users = [f"user-{i}" for i in range(2000)]
        chosen = [router.resolve("linear", routing_key=u).version for u in users]
        share = chosen.count("2") / len(chosen)
        assert 0.07 < share < 0.13  # binomial(2000, 0.1): sd 0.0067, so 0.07-0.13 is > 4 sd either side
        again = [router.resolve("linear", routing_key=u).version for u in users]
        assert again == chosen  # the same user always reaches the same version
        router.promote("linear", "2")
        assert router.traffic("linear") == {"2": 1.0} and router.default_version("linear") == "2"
        router.set_traffic("linear", {"2": 0.5, "1": 0.5})
        assert router.rollback("linear") == "1" and router.traffic("linear") == {"2": 1.0}
        for bad, match in (({"1": -1}, "weights"), ({}, "weights"), ({"9": 1}, "version '9'")):
            with pytest.raises(Exception, match=match):
                router.set_traffic("linear", bad)
    finally:
        router.close()


def test_faulty_canary_is_rolled_back_automatically(tmp_path):
    repo = handler_repo(tmp_path, "max_batch_size: 4\nmax_queue_delay_ms: 0\nparameters: {delay_s: 0.001}\n"
                        "canary: {min_requests: 10, window_s: 60}\n", versions=("1", "2"))
    (repo / "doubler" / "2" / "config.yaml").write_text("parameters: {fail_every: 2}\n")  # v2 fails every 2nd batch
    router = ModelRouter(repo, seed=0)
    try:
        router.set_default("doubler", "1")
        router.set_traffic("doubler", {"1": 0.9, "2": 0.1})
        served = {"1": 0, "2": 0}
        failed = 0
        for i in range(400):
            try:
                router.infer("doubler", {"x": np.ones((1, 2), np.float32)}, routing_key=f"u{i}")
                served["1"] += 1
            except HandlerError:
                failed += 1
            if router.traffic("doubler") == {"1": 1.0}:
                break
        assert router.traffic("doubler") == {"1": 1.0}  # rolled back
        rollback = [e for e in router.events("doubler") if e["event"] == "rollback"][-1]
        assert rollback["versions"] == ["2"] and "error rate" in rollback["reason"]
        assert 0 < failed <= 12  # the bad responses users saw before the rollback (min_requests 10, half failing)
        after = [router.infer("doubler", {"x": np.ones((1, 2), np.float32)}, routing_key=f"v{i}") for i in range(50)]
        assert len(after) == 50
        text = router.metrics.render().decode()
        assert 'deepseek_canary_rollbacks_total{model="doubler",version="2"} 1.0' in text
    finally:
        router.close()


def test_dynamic_batching_stacks_requests_and_never_exceeds_the_limit(tmp_path):
    repo = handler_repo(tmp_path, "max_batch_size: 8\nmax_queue_delay_ms: 20\nmax_queue_size: 256\n"
                        "parameters: {delay_s: 0.02}\n")
    router = ModelRouter(repo)
    try:
        handler = router.resolve("doubler").handler
        type(handler).sizes.clear()
        rows = [1, 2, 3, 1, 2, 1, 1, 3] * 8
        with ThreadPoolExecutor(32) as pool:
            outs = list(pool.map(lambda n: router.infer("doubler", {"x": np.full((n, 2), n, np.float32)}), rows))
        for n, out in zip(rows, outs):  # each request got exactly its own rows back
            assert out["y"].shape == (n, 2) and (out["y"] == 2 * n).all()
        sizes = list(type(handler).sizes)
        assert sum(sizes) == sum(rows) and max(sizes) <= 8  # the limit is exact
        assert np.mean(sizes) > 3  # requests were stacked
        with pytest.raises(Exception, match="max_batch_size=8"):
            router.infer("doubler", {"x": np.ones((9, 2), np.float32)})
        text = router.metrics.render().decode()
        assert "deepseek_batch_size_bucket" in text and "deepseek_queue_duration_seconds_count" in text
    finally:
        router.close()


def test_a_request_whose_deadline_passes_in_the_queue_times_out(tmp_path):
    from deepseek.serve import RequestTimeout

    repo = handler_repo(tmp_path, "max_batch_size: 1\nparameters: {delay_s: 0.2}\n")
    router = ModelRouter(repo)
    try:
        first = router.submit("doubler", {"x": np.ones((1, 2), np.float32)})[1]
        late = router.submit("doubler", {"x": np.ones((1, 2), np.float32)}, timeout_s=0.05)[1]
        assert first.result(timeout=10)["y"][0, 0] == 2
        with pytest.raises(RequestTimeout, match="timed out"):
            late.result(timeout=10)  # it waited behind the first (0.2 s) past its 0.05 s deadline: never run
    finally:
        router.close()


def test_a_full_queue_refuses_at_once_and_the_server_recovers(tmp_path):
    repo = handler_repo(tmp_path, "max_batch_size: 1\nmax_queue_size: 4\nparameters: {delay_s: 0.05}\n")
    router = ModelRouter(repo)
    try:
        futures, refused = [], 0
        started = time.monotonic()
        for _ in range(40):
            try:
                futures.append(router.submit("doubler", {"x": np.ones((1, 2), np.float32)})[1])
            except QueueFull:
                refused += 1
        assert time.monotonic() - started < 1.0  # refusals do not wait for the model
        assert refused >= 30 and len(futures) <= 10
        assert all(f.result(timeout=10)["y"].shape == (1, 2) for f in futures)  # what was accepted is answered
        assert router.infer("doubler", {"x": np.ones((1, 2), np.float32)})["y"][0, 0] == 2  # serves normally after
    finally:
        router.close()


def test_hot_swap_under_load_fails_no_request(onnx_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(onnx_repo, repo)
    router = ModelRouter(repo)
    stop = threading.Event()
    errors: list[BaseException] = []
    answers: list[str] = []

    def client() -> None:
        while not stop.is_set():
            try:
                answers.append(_which(router.infer("linear", {"x": X}, version="1")))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        copies = [onnx_repo / "linear" / v / "model.onnx" for v in ("2", "1")]
        for i in range(10):
            shutil.copy(copies[i % 2], repo / "linear" / "1" / "model.onnx")
            router.load("linear", "1")  # warm-up + check, then an atomic swap
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        router.close()
    assert not errors, errors[:3]
    assert len(answers) > 10 and set(answers) == {"1", "2"}  # both copies served, nothing failed in between
    assert sum(1 for e in router.events("linear") if e["event"] == "reloaded") == 10


def test_a_corrupt_version_is_reported_and_the_rest_keep_serving(onnx_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(onnx_repo, repo)
    (repo / "linear" / "3").mkdir()
    (repo / "linear" / "3" / "model.onnx").write_bytes(b"not a model" * 10)
    (repo / "broken").mkdir()
    (repo / "broken" / "1").mkdir()
    router = ModelRouter(repo)
    try:
        index = {(r["name"], r["version"]): r for r in router.index()}
        assert index[("linear", "3")]["state"] == "UNAVAILABLE" and "not a loadable ONNX" in index[("linear", "3")]["reason"]
        assert index[("broken", "1")]["state"] == "UNAVAILABLE" and "no model file" in index[("broken", "1")]["reason"]
        assert index[("linear", "1")]["state"] == "READY" and _which(router.infer("linear", {"x": X})) == "1"
        shutil.rmtree(repo / "linear" / "2")
        (repo / "linear" / "4").mkdir()
        shutil.copy(repo / "linear" / "1" / "model.onnx", repo / "linear" / "4" / "model.onnx")
        changes = router.poll()
        assert changes == {"loaded": ["linear/4"], "unloaded": ["linear/2"]}
        assert router.models()["linear"] == ["1", "4"]
    finally:
        router.close()


def test_bad_requests_and_configs_name_the_field(onnx_repo):
    router = ModelRouter(onnx_repo)
    try:
        for inputs, match in (({"y": X}, "exactly the tensors"), ({"x": X.astype(np.float64)}, "datatype"),
                              ({"x": np.ones((1, 5), np.float32)}, r"inputs\[x\].shape")):
            with pytest.raises(Exception, match=match):
                router.infer("linear", inputs)
    finally:
        router.close()
    for cfg, match in (({"max_batch_size": 0}, "max_batch_size"), ({"handler": "nocolon"}, "handler"),
                       ({"canary": {"max_error_rate": 2}}, "max_error_rate"), ({"batch": 3}, "only fields"),
                       ({"inputs": [{"name": "x", "datatype": "FLOAT"}]}, "datatype")):
        with pytest.raises(Exception, match=match):
            ModelConfig.from_dict(cfg)
