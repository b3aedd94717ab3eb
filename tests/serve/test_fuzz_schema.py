"""Fuzz the HTTP app from its own OpenAPI schema (schemathesis, in process over ASGI) with a real router over a tiny
ONNX repository: whatever a client sends — valid per the schema or not — the answer is never a 5xx and always
standard JSON (or a v2 binary response with a standard JSON header, or the Prometheus text at /metrics). And the
router's traffic split under arbitrary floats (hypothesis): refused before any change, or a valid split."""

from __future__ import annotations

import json
import math
import shutil

import pytest

hypothesis = pytest.importorskip("hypothesis")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deepseek._core.errors import InvalidArgumentError  # noqa: E402
from deepseek.serve import ModelNotFound, ModelRouter  # noqa: E402

EXAMPLES = 30  # per operation: the whole module stays well under a minute on one core


def _strict_json(body: bytes) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} in a response: not standard JSON")

    return json.loads(body, parse_constant=refuse)


def _operations() -> list[tuple[str, str]]:
    from deepseek.serve.app import create_app

    paths = create_app(ModelRouter(load=False)).openapi()["paths"]
    return [(method.upper(), path) for path, item in sorted(paths.items()) for method in sorted(item)]


@pytest.fixture(scope="module")
def served(onnx_repo, tmp_path_factory):
    from deepseek.serve.app import create_app

    repo = tmp_path_factory.mktemp("fuzz") / "models"
    shutil.copytree(onnx_repo, repo)
    router = ModelRouter(repo)
    app = create_app(router)
    yield router, schemathesis.openapi.from_asgi("/openapi.json", app)
    router.close()


def _restore(router: ModelRouter) -> None:
    """Put back what a fuzzed unload or promote took away, so every case meets both versions loaded."""
    loaded = router.models().get("linear", [])
    for version in ("1", "2"):
        if version not in loaded:
            router.load("linear", version)


def answers_standard_json(ctx, response, case) -> None:
    """Every answer parses as standard JSON (no NaN/Infinity); every refusal is {"error": "<reason>"}."""
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if case.path == "/metrics" and response.status_code == 200:
        assert content_type.startswith("text/plain")
        return
    head = response.headers.get("inference-header-content-length")
    body = response.content
    if head:
        body = body[:int(head[0] if isinstance(head, list) else head)]
    else:
        assert content_type.startswith("application/json"), content_type
    data = _strict_json(body)
    if response.status_code >= 400:
        assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], data


@pytest.mark.parametrize("method, path", _operations())
def test_no_request_gets_a_5xx_or_a_non_json_answer(served, method, path):
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode

    router, schema = served
    operation = schema[path][method]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(mode))
        if "{name}" in path:  # also aim at the loaded model, so the requests reach the router and the model
            fixed = {"name": "linear", **({"version": "1"} if "{version}" in path else {})}
            strategies.append(operation.as_strategy(mode, path_parameters=fixed))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def fuzz(case):
        _restore(router)
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error], additional_checks=[answers_standard_json])

    fuzz()


# -- the router's numbers, by hypothesis ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def router(served):
    return served[0]


weights = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-10, max_value=10**400) | \
    st.booleans() | st.none() | st.text(max_size=3)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(split=st.dictionaries(st.sampled_from(["1", "2"]), weights, max_size=2))
def test_set_traffic_takes_a_valid_split_or_changes_nothing(router, split):
    _restore(router)
    router.set_traffic("linear", {"1": 3, "2": 1})
    try:
        router.set_traffic("linear", split)
    except InvalidArgumentError as exc:
        assert str(exc).startswith("weights"), exc
        assert router.traffic("linear") == {"1": 0.75, "2": 0.25}  # nothing changed
        return
    finally:
        shares = router.traffic("linear")
        assert shares and all(math.isfinite(s) and 0 < s <= 1 for s in shares.values()), shares
        assert math.isclose(sum(shares.values()), 1.0)
        json.dumps(shares, allow_nan=False)
    values = [float(w) for w in split.values()]
    assert all(math.isfinite(w) and w >= 0 for w in values) and sum(values) > 0
    assert router.resolve("linear").version in shares


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(value=st.floats() | st.text(max_size=3) | st.integers() | st.booleans() | st.lists(st.integers(), max_size=1),
       version=st.sampled_from(["1", "2", "9", "", "../1"]) | st.integers(-1, 3) | st.floats() | st.none())
def test_route_by_takes_a_valid_rule_or_changes_nothing(router, value, version):
    _restore(router)
    try:
        router.route_by("linear", "fuzz_key", version, value)
    except (InvalidArgumentError, ModelNotFound) as exc:
        assert str(exc).split(":")[0] in ("value", "version", "model"), exc
        return
    assert isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and not math.isfinite(value))
    assert router.resolve("linear", metadata={"fuzz_key": value}).version == str(version)
