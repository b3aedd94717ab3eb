"""Run a model repository as a server: :func:`run` (one process, or ``workers`` processes on one port with their
metrics summed), the Prometheus metrics endpoint on a port of its own, and :func:`status` of a running server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core.checks import check_int, check_number
from .._core.errors import invalid
from .router import ModelRouter

REPOSITORY_ENV = "DEEPSEEK_SERVE_REPOSITORY"
MAX_WORKERS = 256
MAX_POLL_S = 86400.0
# (router — None with workers > 1, where each worker loads its own —, the server's URL, the metrics URL or None)
OnReady = Callable[[ModelRouter | None, str, str | None], None]


def run(repository: str | Path, *, host: str = "127.0.0.1", port: int = 8000, metrics_port: int | None = None,
        workers: int = 1, poll: float | None = None, progress: bool = True, on_ready: OnReady | None = None) -> None:
    """Serve the model repository ``repository`` (``<model>/<version>/`` folders) over HTTP (KServe v2) until stopped.

    ``port`` 0 takes a free port; ``metrics_port`` also serves ``/metrics`` on a port of its own; ``workers`` > 1
    runs that many processes on one port, each loading the repository, their metrics summed (prometheus-client's
    multiprocess mode); ``poll`` rescans the repository every that many seconds (new versions load, removed ones
    drain). Every address is taken before any model loads, so a port in use fails at once; ``on_ready`` is called
    when the server is about to accept requests."""
    repository = check_repository(repository, allow_empty=bool(poll))
    workers = check_int(workers, "workers", minimum=1, maximum=MAX_WORKERS,
                        expected=f"an integer from 1 to {MAX_WORKERS}")
    check_number(poll, "poll", above=0, maximum=MAX_POLL_S, optional=True,
                 expected=f"None or seconds in (0, {MAX_POLL_S:g}]")
    if metrics_port is not None and metrics_port == port and port != 0:
        raise invalid("metrics_port", metrics_port, f"a port other than port ({port})")
    sock = listen(host, port, argument="port")
    metrics_sock = listen(host, metrics_port, argument="metrics_port") if metrics_port is not None else None
    port = sock.getsockname()[1]
    metrics_port = metrics_sock.getsockname()[1] if metrics_sock is not None else None
    shown = f"[{host}]" if ":" in host else host
    url, metrics_url = f"http://{shown}:{port}", f"http://{shown}:{metrics_port}/metrics" if metrics_port else None
    import uvicorn

    if workers > 1:
        sock.close()  # uvicorn's supervisor binds it again for its workers
        _run_workers(repository, host, port, metrics_sock, workers, poll, lambda: on_ready and on_ready(None, url,
                                                                                                           metrics_url))
        return
    router = load_router(repository, progress=progress)
    if poll:
        router.watch(poll)
    if metrics_sock is not None:
        metrics_server(metrics_sock, router.metrics.render)
    from .app import create_app

    if on_ready is not None:
        on_ready(router, url, metrics_url)
    config = uvicorn.Config(create_app(router), log_level="warning", loop="auto", http="auto")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        router.close()


def check_repository(repository: Any, *, allow_empty: bool = False, argument: str = "repository") -> Path:
    """``repository`` as a folder of ``<model>/<version>/`` folders (empty only with ``allow_empty``)."""
    if not isinstance(repository, (str, os.PathLike)) or not Path(repository).is_dir():
        raise invalid(argument, repository, "a folder of <model>/<version>/ folders")
    path = Path(repository)
    if not allow_empty and not ModelRouter(path, load=False).scan():
        raise invalid(argument, str(path), "a folder holding <model>/<version>/ folders (it holds none; poll=SECONDS "
                                           "waits for them)")
    return path


def listen(host: str, port: int, *, argument: str = "port") -> socket.socket:
    """A socket bound to ``host:port`` and listening (port 0: a free one), or an error naming ``argument`` (or
    ``host``)."""
    port = check_int(port, argument, minimum=0, maximum=65535,
                     expected="a port number from 0 (any free port) to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError, TypeError) as exc:
        raise invalid("host", host, f"an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno in (98, 48, 13, 10048):  # in use, or a privileged port
            raise invalid(argument, port, f"a port free to listen on at {host} ({reason})") from None
        raise invalid("host", host, f"an address of this machine to listen on ({reason})") from None
    sock.set_inheritable(True)
    return sock


def _run_workers(repository: Path, host: str, port: int, metrics_sock: socket.socket | None, workers: int,
                 poll: float | None, ready: Callable[[], Any]) -> None:
    """``workers`` processes on one port, each loading the repository; their metrics are summed from files in a
    private folder, served by every worker and on ``metrics_sock`` by this supervisor."""
    import uvicorn

    from .metrics import MULTIPROCESS_ENV, render_multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="deepseek-serve-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    os.environ[REPOSITORY_ENV] = str(repository.resolve())
    if poll:
        os.environ[REPOSITORY_ENV + "_POLL"] = str(poll)
    try:
        if metrics_sock is not None:
            metrics_server(metrics_sock, render_multiprocess)
        ready()
        uvicorn.run(f"{__name__}:app_from_environment", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", loop="auto", http="auto")
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def metrics_server(sock: socket.socket, render: Callable[[], bytes]) -> None:
    """Prometheus text (``render()``) at http://host:port/metrics on the listening socket ``sock``, from a thread."""
    import http.server
    import socketserver
    import threading

    class _Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = _Server(sock.getsockname()[:2], _Metrics, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    threading.Thread(target=server.serve_forever, name="deepseek-metrics-http", daemon=True).start()


def app_from_environment() -> Any:
    """The app of one worker process (uvicorn's factory), its repository named by the environment."""
    from .app import create_app

    router = load_router(Path(os.environ[REPOSITORY_ENV]), progress=False)
    poll = os.environ.get(REPOSITORY_ENV + "_POLL")
    if poll:
        router.watch(float(poll))
    return create_app(router)


def load_router(repository: str | Path, *, progress: bool = False) -> ModelRouter:
    """A :class:`ModelRouter` with every version in ``repository`` loaded and warmed up (a progress bar with
    ``progress``)."""
    router = ModelRouter(repository, load=False)
    if not progress:
        router.load_repository()
        return router
    from .._core.progress import progress as bar_context

    versions = sum(len(rows) for rows in router.scan().values())
    with bar_context(transient=True) as bar:
        task = bar.add_task("loading models", total=versions)
        router.load_repository(progress=lambda name, version: bar.update(task, advance=1,
                                                                         description=f"loaded {name}/{version}"))
    return router


def server_url(text: Any, argument: str = "url") -> str:
    """``http://host:port`` from a URL or ``host:port`` (no trailing slash)."""
    from urllib.parse import urlsplit

    if not isinstance(text, str):
        raise invalid(argument, text, "a server URL such as http://127.0.0.1:8000")
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid(argument, text, f"a server URL such as http://127.0.0.1:8000 ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text) or \
            (port is not None and not 1 <= port <= 65535):
        raise invalid(argument, text, "a server URL such as http://127.0.0.1:8000")
    return url.rstrip("/")


def status(url: str, *, argument: str = "url") -> dict[str, Any]:
    """What a running KServe v2 server at ``url`` serves: ``{"url", "live", "models": [{"name", "version",
    "state", "reason", "traffic"}]}`` (``traffic``: the version's share, or None where the server does not say)."""
    import urllib.error
    import urllib.request

    base = server_url(url, argument)

    def call(path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    expected = "a running deepseek/KServe v2 server"
    try:
        live = call("/v2/health/live")
        index = call("/v2/repository/index", "POST")
    except (urllib.error.URLError, OSError, ValueError, OverflowError) as exc:
        raise invalid(argument, url, f"{expected} ({' '.join(str(exc).split())})") from None
    if not isinstance(live, dict) or not isinstance(index, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("name", "version", "state", "reason"))
            for r in index):
        raise invalid(argument, url, f"{expected} (its /v2/health/live or /v2/repository/index answer is not v2)")
    weights: dict[str, dict[str, Any]] = {}
    models = []
    for row in index:
        if row["name"] not in weights:
            try:
                answer = call(f"/v2/models/{urllib.request.quote(row['name'], safe='')}/traffic")
                weights[row["name"]] = answer["weights"] if isinstance(answer, dict) and isinstance(
                    answer.get("weights"), dict) else {}
            except (urllib.error.URLError, OSError, ValueError, OverflowError):
                weights[row["name"]] = {}
        share = weights[row["name"]].get(row["version"])
        share = share if isinstance(share, (int, float)) and not isinstance(share, bool) else None
        models.append({**{k: row[k] for k in ("name", "version", "state", "reason")}, "traffic": share})
    return {"url": base, "live": live.get("live"), "models": models}
