"""The HTTP face of a :class:`ModelRouter`: KServe v2 / Open Inference Protocol on FastAPI (uvicorn).

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``; ``GET /v2/models/{m}[/versions/{v}]`` and
``.../ready``; ``POST /v2/models/{m}[/versions/{v}]/infer`` (JSON tensors and the binary-tensor extension);
Triton's model control ``POST /v2/repository/index`` and ``/v2/repository/models/{m}/load|unload``; traffic
``GET|PUT /v2/models/{m}/traffic``, ``POST /v2/models/{m}/promote|rollback``; Prometheus text at ``/metrics``.

Every answer is standard JSON (never ``NaN``/``Infinity``), or Prometheus text at ``/metrics``, or a v2 binary
response. Every error is ``{"error": "<argument>: got ..., expected ..."}`` with a 4xx status naming what was wrong:
400 for a malformed or invalid request (bad JSON; JSON nested deeper than 64 levels; an unknown datatype; a
shape that does not match the data or the model; a floating-point input holding NaN or an infinity, or a number
beyond its datatype's range — refused, naming the input; a traffic weight that is not a finite number >= 0 or
weights whose sum is not finite and > 0 — refused before anything changes), 404 for a model or version that is not
loaded, 413 for a body over the limit (64 MiB for inference, 1 MiB for control requests), 422 when the model's
output for this input holds NaN or an infinity and it was asked for as a JSON tensor (ask for it in binary form,
``parameters.binary_data: true``, to receive the raw values) or when ONNX Runtime refuses an input whose names,
dtypes and shapes match the model's but one of whose free dimensions the graph cannot broadcast or reshape, 503
with ``Retry-After`` when the model's queue is full, 504 when a request's own ``timeout_ms`` passed in the queue.
A 500 means a custom handler raised while running a valid request (or a bug in deepseek).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .._core.checks import check_number
from .._core.errors import DeepSeekError, InvalidArgumentError
from .admission import AdmissionGate
from .batcher import HandlerError, InputRejected, QueueFull, RequestTimeout
from .config import DATATYPES, MAX_SECONDS
from .protocol import HEADER_LENGTH, PayloadTooLarge, UnencodableOutput, encode_response, loads, parse_request
from .router import ModelNotFound, ModelRouter

EXTENSIONS = ["binary_tensor_data", "model_repository", "traffic_split", "statistics"]
MAX_CONTROL_BODY = 2**20  # bytes of a control request (traffic, promote, load, unload)

_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string", "minLength": 1},
    "shape": {"type": "array", "maxItems": 32, "items": {"type": "integer", "minimum": 0}},
    "datatype": {"type": "string", "enum": sorted(DATATYPES)},
    "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}},
    "data": {"type": "array", "description": "the values, flat or nested by shape (omitted with binary_data_size)"}}}
_INFER_REQUEST = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"},
    "parameters": {"type": "object", "description": "binary_data_output (bool), timeout_ms (> 0), routing_key; "
                   "other keys are routing metadata", "properties": {"binary_data_output": {"type": "boolean"}}},
    "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}}}}}}
_ERROR = {"description": "the request was refused; error names the argument, what it got and what was expected",
          "content": {"application/json": {"schema": {"type": "object", "required": ["error"],
                                                      "properties": {"error": {"type": "string"}}}}}}


def _body(schema: dict[str, Any], example: Any, *, required: bool = True, binary: bool = False) -> dict[str, Any]:
    """OpenAPI for a route that reads its body itself (the wire format stays the v2 protocol's)."""
    content: dict[str, Any] = {"application/json": {"schema": schema, "example": example}}
    if binary:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"},
                                               "description": "JSON header, then the tensors' bytes (the length of "
                                                              "the header in Inference-Header-Content-Length)"}
    return {"requestBody": {"required": required, "content": content}}


_ERRORS: dict[int | str, dict[str, Any]] = {400: _ERROR, 404: _ERROR, 413: _ERROR}


def create_app(router: ModelRouter, *, max_body_bytes: int = 64 * 2**20) -> FastAPI:
    """A FastAPI app serving ``router``."""
    app = FastAPI(title="deepseek serve", version=__version__, docs_url=None, redoc_url=None)
    app.state.router = router
    app.add_middleware(AdmissionGate, router=router)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(DeepSeekError)
    @app.exception_handler(HandlerError)
    @app.exception_handler(Exception)
    async def _known(request: Request, exc: Exception) -> JSONResponse:
        return _error(exc)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "deepseek", "version": __version__, "extensions": EXTENSIONS}

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = bool(router.models())
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2/models/{name}", responses=_ERRORS)
    @app.get("/v2/models/{name}/versions/{version}", responses=_ERRORS)
    async def model_metadata(name: str, version: str | None = None) -> Response:
        meta = router.resolve(name, version).metadata()
        if version is None:
            meta["versions"] = router.models().get(name, [])
        return JSONResponse(meta)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> Response:
        try:
            router.resolve(name, version)
            return JSONResponse({"name": name, "ready": True})
        except ModelNotFound as exc:
            return JSONResponse({"name": name, "ready": False, "error": str(exc)}, status_code=404)

    infer_doc = {**_body(_INFER_REQUEST, {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                        "data": [1, 2, 3, 4]}]}, binary=True),
                 "parameters": [{"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                                 "schema": {"type": "integer", "minimum": 1},
                                 "description": "binary extension: bytes of the JSON header"},
                                {"name": "X-Routing-Key", "in": "header", "required": False,
                                 "schema": {"type": "string"}, "description": "sticky traffic split by this key"}]}
    infer_errors = {**_ERRORS, 422: _ERROR, 503: _ERROR, 504: _ERROR}

    @app.post("/v2/models/{name}/infer", openapi_extra=infer_doc, responses=infer_errors)
    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=infer_doc, responses=infer_errors)
    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        started = time.monotonic()
        mv = None
        try:
            body = await _read_body(request, max_body_bytes)
            parsed, tensors = parse_request(body, request.headers.get(HEADER_LENGTH))
            parameters = parsed.get("parameters") or {}
            if not isinstance(parameters, dict):
                raise InvalidArgumentError(f"parameters: got {type(parameters).__name__}, expected an object")
            metadata = {**_header_metadata(request), **parameters}
            routing_key = request.headers.get("x-routing-key") or parameters.get("routing_key")
            if routing_key is not None and (isinstance(routing_key, bool) or not isinstance(routing_key, (str, int))):
                raise InvalidArgumentError(f"parameters.routing_key: got {routing_key!r}, expected a string")
            timeout = parameters.get("timeout_ms")
            if timeout is not None:
                check_number(timeout, "parameters.timeout_ms", above=0, maximum=MAX_SECONDS * 1000)
            mv, future = router.submit(name, tensors, version=version, parameters=parameters, metadata=metadata,
                                       routing_key=None if routing_key is None else str(routing_key),
                                       timeout_s=None if timeout is None else timeout / 1000)
            try:
                outputs = await asyncio.wrap_future(future)
            except (HandlerError, RequestTimeout) as exc:
                router.record_failure(mv, exc, time.monotonic() - started)
                raise
            try:
                body_out, head_len = encode_response(name, mv.version, parsed.get("id"), outputs, parsed)
            except UnencodableOutput:
                router.record(mv, False, time.monotonic() - started, "unencodable_output")
                raise
            router.record(mv, True, time.monotonic() - started, "ok")
        except Exception as exc:
            if mv is None and not isinstance(exc, ModelNotFound):  # refused before any version ran it
                router.metrics.requests.labels(name, version or "", _status(exc)).inc()
            return _error(exc)
        headers = {"x-model-version": mv.version}
        if head_len is None:
            return Response(body_out, media_type="application/json", headers=headers)
        headers[HEADER_LENGTH] = str(head_len)
        return Response(body_out, media_type="application/octet-stream", headers=headers)

    version_body = _body({"type": "object", "properties": {"parameters": {"type": "object", "properties": {
        "version": {"type": "string"}}}}}, {"parameters": {"version": "2"}}, required=False)

    @app.post("/v2/repository/index")
    async def repository_index() -> list[dict[str, Any]]:
        return router.index()

    @app.post("/v2/repository/models/{name}/load", openapi_extra=version_body, responses=_ERRORS)
    async def load(name: str, request: Request) -> Response:
        version = (await _json_object(request, '{"parameters": {"version": "2"}}')).get("parameters", {}).get("version")
        if version is not None:
            _version_argument(version)
        mv = await asyncio.get_running_loop().run_in_executor(None, lambda: router.load(name, version))
        return JSONResponse({"name": name, "version": mv.version, "state": "READY"})

    @app.post("/v2/repository/models/{name}/unload", openapi_extra=version_body, responses=_ERRORS)
    async def unload(name: str, request: Request) -> Response:
        version = (await _json_object(request, '{"parameters": {"version": "2"}}')).get("parameters", {}).get("version")
        if version is not None:
            _version_argument(version)
        router.unload(name, version)
        return JSONResponse({"name": name, "version": version, "state": "UNAVAILABLE"})

    @app.get("/v2/models/{name}/traffic", responses=_ERRORS)
    async def get_traffic(name: str) -> Response:
        return JSONResponse({"name": name, "default": router.default_version(name), "weights": router.traffic(name)})

    @app.put("/v2/models/{name}/traffic", responses=_ERRORS, openapi_extra=_body(
        {"type": "object", "required": ["weights"], "properties": {"weights": {
            "type": "object", "minProperties": 1, "description": "version -> relative weight (finite, >= 0; the sum "
            "finite and > 0)", "additionalProperties": {"type": "number", "minimum": 0}}}},
        {"weights": {"1": 0.9, "2": 0.1}}))
    async def put_traffic(name: str, request: Request) -> Response:
        body = await _json_object(request, '{"weights": {"1": 0.9, "2": 0.1}}')
        if "weights" not in body:
            raise InvalidArgumentError('weights: got nothing, expected a mapping of version -> weight such as '
                                       '{"weights": {"1": 0.9, "2": 0.1}}')
        router.set_traffic(name, body["weights"])
        return JSONResponse({"name": name, "weights": router.traffic(name)})

    @app.post("/v2/models/{name}/promote", responses=_ERRORS, openapi_extra=_body(
        {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}, {"version": "2"}))
    async def promote(name: str, request: Request) -> Response:
        version = (await _json_object(request, '{"version": "2"}')).get("version")
        router.promote(name, _version_argument(version))
        return JSONResponse({"name": name, "default": router.default_version(name), "weights": router.traffic(name)})

    @app.post("/v2/models/{name}/rollback", responses=_ERRORS)
    async def rollback(name: str) -> Response:
        removed = router.rollback(name)
        return JSONResponse({"name": name, "removed": removed, "weights": router.traffic(name)})

    @app.get("/v2/models/{name}/events", responses=_ERRORS)
    async def events(name: str) -> Response:
        return JSONResponse(router.events(name))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(router.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _json_object(request: Request, example: str) -> dict[str, Any]:
    """The request's JSON object body (empty: ``{}``), or a 400 (413 over :data:`MAX_CONTROL_BODY` bytes) naming
    what was expected."""
    body = await _read_body(request, MAX_CONTROL_BODY)
    if not body.strip():
        return {}
    data = loads(body, "body", example)
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"body: got {type(data).__name__}, expected an object such as {example}")
    if not isinstance(data.get("parameters", {}), dict):
        raise InvalidArgumentError(f"parameters: got {type(data['parameters']).__name__}, expected an object such as "
                                   f"{example}")
    return data


def _version_argument(version: Any) -> str:
    if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version):
        raise InvalidArgumentError(f"version: got {version!r}, expected a version such as \"2\"")
    return str(version)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: {declared} bytes, expected at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: more than {limit} bytes, expected at most {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def _header_metadata(request: Request) -> dict[str, str]:
    """``X-Use-V2: true`` → ``{"use_v2": "true"}``: routing metadata may come as headers."""
    return {k[2:].replace("-", "_"): v for k, v in request.headers.items()
            if k.startswith("x-") and k not in ("x-routing-key",)}


def _status(exc: BaseException) -> str:
    return {PayloadTooLarge: "too_large", QueueFull: "refused", RequestTimeout: "timeout",
            UnencodableOutput: "unencodable_output",
            HandlerError: "error", ModelNotFound: "not_found"}.get(type(exc), "bad_request")


def _error(exc: BaseException) -> JSONResponse:
    for kind, status in ((PayloadTooLarge, 413), (ModelNotFound, 404), (QueueFull, 503),
                         (RequestTimeout, 504), (UnencodableOutput, 422)):
        if isinstance(exc, kind):
            return JSONResponse({"error": str(exc)}, status_code=status,
                                headers={"Retry-After": "1"} if kind is QueueFull else None)
    if isinstance(exc, InputRejected):
        return JSONResponse({"error": f"the model cannot run on this input (its names, dtypes and shapes match "
                                      f"the model's, but a dimension does not fit the graph): {exc}"}, status_code=422)
    if isinstance(exc, HandlerError):
        return JSONResponse({"error": f"the model failed on this request: {exc}"}, status_code=500)
    if isinstance(exc, DeepSeekError):
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)
