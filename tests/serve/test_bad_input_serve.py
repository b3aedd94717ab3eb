"""Bad input to `deepseek serve`, the router and the HTTP app: one line naming the argument, exit 2 or a 4xx JSON
answer, nothing changed, nothing written, never a traceback, a 5xx or a non-JSON body."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest

from _refusals import refused
from conftest import handler_repo
from deepseek._core.errors import InvalidArgumentError


def _strict_json(body: bytes) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(body, parse_constant=refuse)


@pytest.fixture(scope="module")
def doubler(tmp_path_factory):
    """A router over models/doubler/{1,2} (a numpy handler: no torch, loads in milliseconds)."""
    from deepseek.serve import ModelRouter

    repo = handler_repo(tmp_path_factory.mktemp("bad"), "max_batch_size: 4\nmax_queue_delay_ms: 0\n"
                        "parameters: {delay_s: 0}\n", versions=("1", "2"))
    router = ModelRouter(repo)
    router.set_default("doubler", "1")
    yield router
    router.close()


@pytest.fixture(scope="module")
def client(doubler):
    from schemathesis.python.asgi import get_client

    from deepseek.serve.app import create_app

    with get_client(create_app(doubler)) as c:
        yield c


# -- the CLI -------------------------------------------------------------------------------------------------
def _empty_repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / "m" / "1").mkdir(parents=True)
    return tmp_path / "repo"


CLI_CASES = {
    "port out of range": (["serve", "{repo}", "--port", "99999"], "--port"),
    "port negative": (["serve", "{repo}", "--port", "-1"], "--port"),
    "metrics port out of range": (["serve", "{repo}", "--metrics-port", "65536"], "--metrics-port"),
    "metrics port same as port": (["serve", "{repo}", "--port", "{free}", "--metrics-port", "{free}"], "--metrics-port"),
    "poll negative": (["serve", "{repo}", "--poll", "-1"], "--poll"),
    "poll nan": (["serve", "{repo}", "--poll", "nan"], "--poll"),
    "poll too long for a thread": (["serve", "{repo}", "--poll", "1e308"], "--poll"),
    "workers zero": (["serve", "{repo}", "--workers", "0"], "--workers"),
    "workers absurd": (["serve", "{repo}", "--workers", "100000"], "--workers"),
    "host with a port": (["serve", "{repo}", "--host", "localhost:80"], "--host"),
    "host unknown": (["serve", "{repo}", "--host", "no-such-host.invalid", "--port", "{free}"], "--host"),
    "port in use": (["serve", "{repo}", "--port", "{busy}"], "--port"),
    "repository missing": (["serve", "{tmp}/none"], "MODEL_REPO"),
    "repository empty": (["serve", "{tmp}/emptyrepo"], "MODEL_REPO"),
    "stray argument": (["serve", "{repo}", "extra"], "URL"),
    "flag of another action": (["serve", "alert-rules", "--port", "5"], "--port"),
    "alert-rules -o a folder": (["serve", "alert-rules", "-o", "{tmp}"], "--output"),
    "alert-rules --grafana a folder": (["serve", "alert-rules", "--grafana", "{tmp}"], "--grafana"),
    "alert-rules -o over an input": (["serve", "bench", "{repo}/m/1/x", "--json", "{repo}/m/1/x"], "--json"),
    "alert-rules twice the same file": (["serve", "alert-rules", "-o", "{tmp}/a.yml", "--grafana", "{tmp}/a.yml"],
                                        "--grafana"),
    "bench --json a folder": (["serve", "bench", "http://127.0.0.1:9", "--json", "{tmp}"], "--json"),
    "bench concurrency zero": (["serve", "bench", "http://127.0.0.1:9", "--concurrency", "0,4"], "--concurrency"),
    "bench concurrency words": (["serve", "bench", "http://127.0.0.1:9", "--concurrency", "a"], "--concurrency"),
    "bench empty repository": (["serve", "bench", "{tmp}/emptyrepo"], "MODEL_REPO"),
    "bench bad url": (["serve", "bench", "http://[::1"], "URL"),
    "status without url": (["serve", "status"], "URL"),
    "status bad url": (["serve", "status", "http://[::1"], "URL"),
    "status port out of range": (["serve", "status", "localhost:99999"], "URL"),
    "status not a url": (["serve", "status", "ftp://x"], "URL"),
    "status nothing listening": (["serve", "status", "http://127.0.0.1:{free}"], "URL"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_bad_input_in_one_line(case, tmp_path, capsys):
    argv, word = CLI_CASES[case]
    repo = _empty_repo(tmp_path)
    (repo / "m" / "1" / "x").write_text("input")
    (tmp_path / "emptyrepo").mkdir()
    with socket.socket() as busy, socket.socket() as probe:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
        probe.close()
        values = {"repo": str(repo), "tmp": str(tmp_path), "free": str(free), "busy": str(busy.getsockname()[1])}
        # nothing written, nothing changed
        refused([a.format(**values) for a in argv], capsys, word, unchanged=tmp_path)


# -- the router (Python API) ---------------------------------------------------------------------------------
BAD_WEIGHTS = {
    "infinity": ({"1": math.inf, "2": 1.0}, "weights['1']"),
    "nan": ({"1": math.nan}, "weights['1']"),
    "negative": ({"1": -1.0}, "weights['1']"),
    "minus infinity": ({"2": -math.inf}, "weights['2']"),
    "a bool": ({"1": True}, "weights['1']"),
    "a string": ({"1": "0.5"}, "weights['1']"),
    "an int too big for a float": ({"1": 10**400}, "weights['1']"),
    "all zero": ({"1": 0.0, "2": 0}, "weights"),
    "empty": ({}, "weights"),
    "not a mapping": ([("1", 1.0)], "weights"),
    "a version twice": ({1: 1.0, "1": 2.0}, "weights"),
    "unknown version": ({"1": 1.0, "9": 1.0}, "'9'"),
    "a bad version key": ({None: 1.0}, "weights key"),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_set_traffic_validates_every_weight_before_any_change(doubler, case):
    weights, word = BAD_WEIGHTS[case]
    doubler.set_traffic("doubler", {"1": 0.75, "2": 0.25})
    with pytest.raises(Exception, match=rf"{__import__('re').escape(word)}") as info:
        doubler.set_traffic("doubler", weights)
    assert type(info.value).__name__ in ("InvalidArgumentError", "ModelNotFound")
    assert doubler.traffic("doubler") == {"1": 0.75, "2": 0.25}  # unchanged
    doubler.rollback("doubler")


def test_huge_finite_weights_are_normalised_without_overflow(doubler):
    doubler.set_traffic("doubler", {"1": 1e308, "2": 1e308})
    assert doubler.traffic("doubler") == {"1": 0.5, "2": 0.5}
    doubler.set_traffic("doubler", {"1": 5e-324, "2": 0})
    assert doubler.traffic("doubler") == {"1": 1.0}
    doubler.rollback("doubler")


@pytest.mark.parametrize("call, word", [
    (lambda r: r.route_by("doubler", "k", "2", value=math.nan), "value"),
    (lambda r: r.route_by("doubler", "k", "2", value=[1]), "value"),
    (lambda r: r.route_by("doubler", "k", None), "version"),
    (lambda r: r.route_by("doubler", "", "2"), "key"),
    (lambda r: r.promote("doubler", None), "version"),
    (lambda r: r.set_default("doubler", ["1"]), "version"),
    (lambda r: r.watch(math.nan), "interval_s"),
    (lambda r: r.watch(-1), "interval_s"),
    (lambda r: r.watch(1e300), "interval_s"),
    (lambda r: r.infer("doubler", {"x": np.ones((1, 2), np.float32)}, timeout_s=math.nan), "timeout_s"),
    (lambda r: r.infer("doubler", {"x": np.ones((0, 2), np.float32)}), "at least one row"),
    (lambda r: r.infer("doubler", [1, 2]), "inputs"),
    (lambda r: r.infer("doubler", {"z": np.ones((1, 2), np.float32)}), "cannot take this request"),
    (lambda r: r.infer("doubler", {"x": [[1.0, 2.0]]}), "numpy array"),
    (lambda r: r.resolve(["doubler"]), "name"),
    (lambda r: r.load("doubler", version={"v": 1}), "version"),
])
def test_router_arguments_are_checked_and_named(doubler, call, word):
    with pytest.raises(InvalidArgumentError, match=word):
        call(doubler)
    assert doubler.models() == {"doubler": ["1", "2"]} and doubler.default_version("doubler") == "1"


@pytest.mark.parametrize("call, word", [
    (lambda: __import__("deepseek.serve.slo", fromlist=["x"]).Thresholds(window="5 m"), "window"),
    (lambda: __import__("deepseek.serve.slo", fromlist=["x"]).Thresholds(latency_alert_s=math.inf), "latency_alert_s"),
    (lambda: __import__("deepseek.serve.loadgen", fromlist=["x"]).run_load(
        "http://127.0.0.1:9", "m", {}, concurrency=0, requests=1), "concurrency"),
    (lambda: __import__("deepseek.serve", fromlist=["x"]).ModelConfig(max_queue_delay_ms=math.inf), "max_queue_delay_ms"),
    (lambda: __import__("deepseek.serve", fromlist=["x"]).ModelConfig(instances=True), "instances"),
    (lambda: __import__("deepseek.serve", fromlist=["x"]).CanaryPolicy(window_s="60"), "window_s"),
])
def test_serving_settings_are_checked_and_named(call, word):
    with pytest.raises(InvalidArgumentError, match=word):
        call()


CONFIGS = {
    "binary": (b"\x00\x01\x02\xff\xfe", "config.yaml"),
    "not utf-8": (b"max_batch_size: \xff\n", "UTF-8"),
    "malformed": (b"max_batch_size: [1\n", "valid YAML"),
    "a list": (b"- 1\n- 2\n", "mapping"),
    "a field of the wrong type": (b"max_batch_size: eight\n", "'max_batch_size'"),
    "a bool for a count": (b"instances: true\n", "'instances'"),
    "an infinite delay": (b"max_queue_delay_ms: .inf\n", "max_queue_delay_ms"),
    "a nan timeout": (b"timeout_ms: .nan\n", "timeout_ms"),
    "inputs not a list": (b"inputs: 3\n", "'inputs'"),
    "a shape not a list": (b"inputs: [{name: x, shape: 4}]\n", "shape"),
    "a canary field of the wrong type": (b"canary: {max_p99_ms: fast}\n", "canary.max_p99_ms"),
    "an unknown field": (b"max_batch: 3\n", "max_batch"),
    "a bad _version": (b"_version: new\n", "_version"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_bad_config_yaml_is_refused_naming_the_file_and_field(tmp_path, case):
    from deepseek.serve import ModelConfig, ModelRouter

    content, word = CONFIGS[case]
    repo = handler_repo(tmp_path, "")
    (repo / "doubler" / "config.yaml").write_bytes(content)
    with pytest.raises(InvalidArgumentError) as info:
        ModelConfig.load(repo / "doubler" / "config.yaml")
    assert "config.yaml" in str(info.value) and word in str(info.value), str(info.value)
    router = ModelRouter(repo)  # the server keeps going; the index says why
    try:
        (row,) = router.index()
        assert row["state"] == "UNAVAILABLE" and "config.yaml" in row["reason"] and word in row["reason"]
    finally:
        router.close()


def test_a_version_config_error_names_the_version_file(tmp_path):
    from deepseek.serve import ModelRouter

    repo = handler_repo(tmp_path, "max_batch_size: 4\n")
    (repo / "doubler" / "1" / "config.yaml").write_text("max_batch_size: 0\n")
    router = ModelRouter(repo)
    try:
        reason = router.index()[0]["reason"]
        assert str(Path("doubler") / "1" / "config.yaml") in reason and "max_batch_size" in reason
    finally:
        router.close()


# -- the HTTP app ---------------------------------------------------------------------------------------------
def _tensor(data, datatype="FP32", shape=None, name="x"):
    return json.dumps({"inputs": [{"name": name, "shape": shape or [1, 2], "datatype": datatype, "data": data}]})


HTTP_CASES = {
    "infinite weight": ("PUT", "/v2/models/doubler/traffic", '{"weights": {"1": Infinity, "2": 1}}', 400, "weights"),
    "huge weight": ("PUT", "/v2/models/doubler/traffic", '{"weights": {"1": 1e400}}', 400, "weights"),
    "nan weight": ("PUT", "/v2/models/doubler/traffic", '{"weights": {"1": NaN}}', 400, "weights"),
    "weights missing": ("PUT", "/v2/models/doubler/traffic", '{"weight": {"1": 1}}', 400, "weights"),
    "weights a list": ("PUT", "/v2/models/doubler/traffic", '{"weights": [1, 2]}', 400, "weights"),
    "deep traffic body": ("PUT", "/v2/models/doubler/traffic", "[" * 50000 + "]" * 50000, 400, "64 levels"),
    "deep infer body": ("POST", "/v2/models/doubler/infer", "[" * 50000, 400, "64 levels"),
    "deep but parseable": ("POST", "/v2/models/doubler/infer",
                           '{"inputs": [], "p": ' + "[" * 500 + "]" * 500 + "}", 400, "64 levels"),
    "nan input": ("POST", "/v2/models/doubler/infer", _tensor([1, "NaN"]).replace('"NaN"', "NaN"), 400, "inputs[x]"),
    "1e400 input": ("POST", "/v2/models/doubler/infer", _tensor([1, 7]).replace("7]", "1e400]"), 400, "inputs[x]"),
    "beyond FP32": ("POST", "/v2/models/doubler/infer", _tensor([1, 1e39]), 400, "inputs[x]"),
    "fraction for INT32": ("POST", "/v2/models/doubler/infer", _tensor([1.5, 2], "INT32"), 400, "inputs[x]"),
    "string numbers": ("POST", "/v2/models/doubler/infer", _tensor(["1", "2"]), 400, "inputs[x]"),
    "too many dims": ("POST", "/v2/models/doubler/infer", _tensor([1], shape=[1] * 40), 400, "inputs[x].shape"),
    "shape of floats": ("POST", "/v2/models/doubler/infer", _tensor([1, 2], shape=[1.0, 2]), 400, "shape"),
    "id an object": ("POST", "/v2/models/doubler/infer", '{"id": {"a": 1}, ' + _tensor([1, 2])[1:], 400, "id"),
    "input parameters a list": ("POST", "/v2/models/doubler/infer",
                                '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": [1]}]}',
                                400, "parameters"),
    "binary flag a string": ("POST", "/v2/models/doubler/infer",
                             '{"parameters": {"binary_data_output": "no"}, ' + _tensor([1, 2])[1:], 400,
                             "binary_data_output"),
    "timeout nan": ("POST", "/v2/models/doubler/infer",
                    '{"parameters": {"timeout_ms": NaN}, ' + _tensor([1, 2])[1:], 400, "timeout_ms"),
    "routing key an object": ("POST", "/v2/models/doubler/infer",
                              '{"parameters": {"routing_key": {}}, ' + _tensor([1, 2])[1:], 400, "routing_key"),
    "handler refuses the input": ("POST", "/v2/models/doubler/infer", _tensor([1, 2], name="z"), 400, "needs x"),
    "zero rows": ("POST", "/v2/models/doubler/infer", _tensor([], shape=[0, 2]), 400, "at least one row"),
    "output NaN in JSON": ("POST", "/v2/models/doubler/infer", _tensor([3e38, 1]), 422, "output 'y'"),
    "promote without version": ("POST", "/v2/models/doubler/promote", "{}", 400, "version"),
    "promote a list": ("POST", "/v2/models/doubler/promote", '{"version": [2]}', 400, "version"),
    "load version an object": ("POST", "/v2/repository/models/doubler/load",
                               '{"parameters": {"version": {"a": 1}}}', 400, "version"),
    "control body too large": ("PUT", "/v2/models/doubler/traffic", " " * (2**20 + 1), 413, "at most"),
    "not UTF-8": ("PUT", "/v2/models/doubler/traffic", b"\xff\xfe", 400, "malformed JSON"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the test handler's own 2 * 3e38
@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_bad_input_is_a_4xx_json_naming_the_field(client, doubler, case):
    method, path, body, code, word = HTTP_CASES[case]
    doubler.set_traffic("doubler", {"1": 0.75, "2": 0.25})
    response = client.request(method, path, data=body if isinstance(body, bytes) else body.encode(),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == code, (case, response.status_code, response.content[:300])
    error = _strict_json(response.content)["error"]
    assert word in error, (case, error)
    traffic = client.get("/v2/models/doubler/traffic")
    assert traffic.status_code == 200 and _strict_json(traffic.content)["weights"] == {"1": 0.75, "2": 0.25}
    assert doubler.models() == {"doubler": ["1", "2"]}
    doubler.rollback("doubler")


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_non_finite_output_travels_in_binary_form(client):
    body = json.loads(_tensor([3e38, 1]))
    body["outputs"] = [{"name": "y", "parameters": {"binary_data": True}}]
    response = client.post("/v2/models/doubler/infer", data=json.dumps(body).encode())
    assert response.status_code == 200
    head = int(response.headers["inference-header-content-length"])
    _strict_json(response.content[:head])
    assert np.isinf(np.frombuffer(response.content[head:], np.float32)[0])


def test_an_input_the_graph_cannot_broadcast_is_a_422_not_a_500(tmp_path):
    """x: [batch, n] plus a [1, 3] constant runs for n = 1 (the warm-up) and n = 3, and fails inside ONNX Runtime for
    n = 2: the request matched the declared shapes, so the model, not the server, refuses it — 422 with ONNX
    Runtime's reason, the canary window untouched; a handler's own exception stays a 500."""
    import onnx
    from onnx import TensorProto, helper
    from schemathesis.python.asgi import get_client

    from deepseek.serve import ModelRouter
    from deepseek.serve.app import create_app

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"])], "broadcast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("c", TensorProto.FLOAT, [1, 3], [1.0, 2.0, 3.0])])
    (tmp_path / "repo" / "add" / "1").mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
              str(tmp_path / "repo" / "add" / "1" / "model.onnx"))
    router = ModelRouter(tmp_path / "repo")
    try:
        with get_client(create_app(router)) as client:
            def infer(n):
                body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, n], "data": [1.0] * n}]}
                return client.post("/v2/models/add/infer", data=json.dumps(body).encode())

            assert infer(3).status_code == 200
            bad = infer(2)
            assert bad.status_code == 422, bad.content[:300]
            assert "cannot run on this input" in _strict_json(bad.content)["error"]
            summary = router.resolve("add").window.summary()
            assert summary["requests"] == 2 and summary["error_rate"] == 0.0
    finally:
        router.close()
