"""Admission control in front of the HTTP app: an inference request for a model that already holds as many requests
as it can queue and run is refused from its headers, before its body is read and before any routing.

Under overload this keeps the event loop's time and the process's memory for the requests that will run: a refusal
costs a few microseconds and no body bytes (a client that sends ``Expect: 100-continue``, as curl does for large
bodies, never uploads a refused body at all). A refused request is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Callable
from typing import Any

from .router import ModelRouter

_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")


class AdmissionGate:
    """ASGI middleware: at most ``router.admission_limit(model)`` inference requests per model held at once."""

    def __init__(self, app: Callable[..., Any], router: ModelRouter) -> None:
        self.app, self.router = app, router
        self.held: collections.Counter[str] = collections.Counter()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        match = _INFER.match(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        name = match.group(1)
        limit = self.router.admission_limit(name)
        if limit is not None and self.held[name] >= limit:
            self.router.metrics.requests.labels(name, match.group(2) or "", "refused").inc()
            await _refuse(scope, send, f"model {name}: {limit} requests are already queued or running; retry later")
            return
        self.held[name] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.held[name] -= 1
            if not self.held[name]:
                del self.held[name]


async def _refuse(scope: dict[str, Any], send: Callable[..., Any], reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", b"1")]
    if (b"expect", b"100-continue") in [(k.lower(), v.lower()) for k, v in scope.get("headers", [])]:
        headers.append((b"connection", b"close"))  # the client holds its body back: the connection cannot go on
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
