"""The HTTP face of a :class:`ModelRouter`: KServe v2 / Open Inference Protocol on FastAPI (uvicorn).

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``; ``GET /v2/models/{m}[/versions/{v}]`` and
``.../ready``; ``POST /v2/models/{m}[/versions/{v}]/infer`` (JSON tensors and the binary-tensor extension);
Triton's model control ``POST /v2/repository/index`` and ``/v2/repository/models/{m}/load|unload``; traffic
``GET|PUT /v2/models/{m}/traffic``, ``POST /v2/models/{m}/promote|rollback``; Prometheus text at ``/metrics``.
Every error is JSON ``{"error": ...}`` with a 4xx status (5xx only for a model or handler that raised).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .._errors import DeepSeekError, InvalidArgumentError
from .admission import AdmissionGate
from .batcher import HandlerError, QueueFull, RequestTimeout
from .protocol import HEADER_LENGTH, PayloadTooLarge, encode_response, parse_request
from .router import ModelNotFound, ModelRouter

EXTENSIONS = ["binary_tensor_data", "model_repository", "traffic_split", "statistics"]


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
        return JSONResponse({"error": f"bad request: {exc.errors()[:1]}"}, status_code=400)

    @app.exception_handler(DeepSeekError)
    @app.exception_handler(HandlerError)
    async def _known(request: Request, exc: Exception) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
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

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
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

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        started = time.monotonic()
        mv = None
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                raise PayloadTooLarge(f"body: {declared} bytes, expected at most {max_body_bytes}")
            body = await _read_body(request, max_body_bytes)
            parsed, tensors = parse_request(body, request.headers.get(HEADER_LENGTH))
            parameters = parsed.get("parameters") or {}
            if not isinstance(parameters, dict):
                raise InvalidArgumentError(f"parameters: got {type(parameters).__name__}, expected an object")
            metadata = {**_header_metadata(request), **parameters}
            routing_key = request.headers.get("x-routing-key") or parameters.get("routing_key")
            timeout = parameters.get("timeout_ms")
            if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
                raise InvalidArgumentError(f"parameters.timeout_ms: got {timeout!r}, expected milliseconds > 0")
            mv, future = router.submit(name, tensors, version=version, parameters=parameters, metadata=metadata,
                                       routing_key=None if routing_key is None else str(routing_key),
                                       timeout_s=None if timeout is None else timeout / 1000)
            try:
                outputs = await asyncio.wrap_future(future)
            except (HandlerError, RequestTimeout):
                router.record(mv, False, time.monotonic() - started, "error")
                raise
            body_out, head_len = encode_response(name, mv.version, parsed.get("id"), outputs, parsed)
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

    @app.post("/v2/repository/index")
    async def repository_index() -> list[dict[str, Any]]:
        return router.index()

    @app.post("/v2/repository/models/{name}/load")
    async def load(name: str, request: Request) -> Response:
        version = (await _json_object(request, '{"parameters": {"version": "2"}}')).get("parameters", {}).get("version")
        mv = await asyncio.get_running_loop().run_in_executor(None, lambda: router.load(name, version))
        return JSONResponse({"name": name, "version": mv.version, "state": "READY"})

    @app.post("/v2/repository/models/{name}/unload")
    async def unload(name: str, request: Request) -> Response:
        version = (await _json_object(request, '{"parameters": {"version": "2"}}')).get("parameters", {}).get("version")
        router.unload(name, version)
        return JSONResponse({"name": name, "version": version, "state": "UNAVAILABLE"})

    @app.get("/v2/models/{name}/traffic")
    async def get_traffic(name: str) -> Response:
        return JSONResponse({"name": name, "default": router.default_version(name), "weights": router.traffic(name)})

    @app.put("/v2/models/{name}/traffic")
    async def put_traffic(name: str, request: Request) -> Response:
        router.set_traffic(name, (await _json_object(request, '{"weights": {"1": 0.9, "2": 0.1}}')).get("weights"))
        return JSONResponse({"name": name, "weights": router.traffic(name)})

    @app.post("/v2/models/{name}/promote")
    async def promote(name: str, request: Request) -> Response:
        router.promote(name, str((await _json_object(request, '{"version": "2"}')).get("version")))
        return JSONResponse({"name": name, "default": router.default_version(name), "weights": router.traffic(name)})

    @app.post("/v2/models/{name}/rollback")
    async def rollback(name: str) -> Response:
        removed = router.rollback(name)
        return JSONResponse({"name": name, "removed": removed, "weights": router.traffic(name)})

    @app.get("/v2/models/{name}/events")
    async def events(name: str) -> Response:
        return JSONResponse(router.events(name))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(router.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _json_object(request: Request, example: str) -> dict[str, Any]:
    """The request's JSON object body (empty: ``{}``), or a 400 naming what was expected."""
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidArgumentError(f"body: malformed JSON, expected e.g. {example}") from None
    if not isinstance(data, dict) or not isinstance(data.get("parameters", {}), dict):
        raise InvalidArgumentError(f"body: got {type(data).__name__}, expected an object such as {example}")
    return data


async def _read_body(request: Request, limit: int) -> bytes:
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
            HandlerError: "error", ModelNotFound: "not_found"}.get(type(exc), "bad_request")


def _error(exc: BaseException) -> JSONResponse:
    if isinstance(exc, PayloadTooLarge):
        return JSONResponse({"error": str(exc)}, status_code=413)
    if isinstance(exc, ModelNotFound):
        return JSONResponse({"error": str(exc)}, status_code=404)
    if isinstance(exc, QueueFull):
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "1"})
    if isinstance(exc, RequestTimeout):
        return JSONResponse({"error": str(exc)}, status_code=504)
    if isinstance(exc, HandlerError):
        return JSONResponse({"error": f"the model failed on this request: {exc}"}, status_code=500)
    if isinstance(exc, DeepSeekError):
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)
