"""``deepseek serve``: serve a model repository over HTTP (KServe v2), write the alert rules, check a server.

    deepseek serve MODEL_REPO [--host 127.0.0.1] [--port 8000] [--metrics-port 8002] [--workers N] [--poll 5]
    deepseek serve alert-rules [-o rules.yml] [--grafana dashboard.json]
    deepseek serve status URL
    deepseek serve bench URL|MODEL_REPO [--model NAME] [--concurrency 1,4,16,64] [--requests 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._core.errors import invalid

ACTIONS = ("alert-rules", "status", "bench")
REPOSITORY_ENV = "DEEPSEEK_SERVE_REPOSITORY"


MAX_WORKERS = 256
MAX_POLL_S = 86400.0
MAX_CONCURRENCY = 4096

# the options each action reads (any other one given is refused rather than ignored)
_OPTIONS = {
    "serve": {"host", "port", "metrics_port", "workers", "poll"},
    "alert-rules": {"output", "grafana"},
    "status": set(),
    "bench": {"model", "concurrency", "requests", "rows", "json"},
}


def _host(text: str) -> str:
    """An argparse ``type`` for the address to listen on: a host name or IP address, no port or spaces."""
    import argparse as _argparse

    if not text or len(text) > 253 or any(c.isspace() or c in "/@?#" for c in text) or text.count(":") == 1:
        raise _argparse.ArgumentTypeError(f"expected a host name or IP address such as 127.0.0.1 or ::1, got {text!r}")
    return text


def _concurrency(text: str) -> list[int]:
    """An argparse ``type`` for comma-separated connection counts, each 1-4096."""
    import argparse as _argparse

    try:
        levels = [int(c) for c in text.split(",")]
    except ValueError:
        levels = []
    if not levels or not all(1 <= level <= MAX_CONCURRENCY for level in levels):
        raise _argparse.ArgumentTypeError(f"expected comma-separated integers 1-{MAX_CONCURRENCY}, e.g. 1,4,16, "
                                          f"got {text!r}")
    return levels


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_outputs, number, port

    def bounded(minimum: int, maximum: int) -> Any:
        check = count(minimum)

        def parse(text: str) -> int:
            value = check(text)
            if value > maximum:
                raise argparse.ArgumentTypeError(f"expected an integer {minimum}-{maximum}, got {value}")
            return value

        parse.__name__ = f"integer {minimum}-{maximum}"
        return parse

    parser.add_argument("target", metavar="MODEL_REPO|alert-rules|status|bench",
                        help="a model repository folder (models/<name>/<version>/), or an action")
    parser.add_argument("url", nargs="?", help="status/bench: the server's URL, e.g. http://127.0.0.1:8000 (bench: "
                        "or a model repository, served for the run on a free port)")
    parser.add_argument("--host", type=_host, default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=None, help="port to listen on (default 8000; 0: a free one)")
    parser.add_argument("--metrics-port", type=port, default=None,
                        help="also expose /metrics on this port (always on the serving port too)")
    parser.add_argument("--workers", type=bounded(1, MAX_WORKERS), default=None,
                        help=f"server processes sharing the port (1-{MAX_WORKERS}, default 1)")
    parser.add_argument("--poll", type=number(above=0, maximum=MAX_POLL_S), default=None, metavar="SECONDS",
                        help="watch the repository: load new versions, unload removed ones")
    parser.add_argument("--output", "-o", default=None, help="alert-rules: the rules file (default: stdout)")
    parser.add_argument("--grafana", default=None, metavar="FILE", help="alert-rules: also write a Grafana dashboard")
    parser.add_argument("--model", default=None, help="bench: the model to load (default: the first served)")
    parser.add_argument("--concurrency", type=_concurrency, default=None,
                        help="bench: connections, comma-separated levels (default 1,4,16,64)")
    parser.add_argument("--requests", type=count(), default=None, help="bench: requests per concurrency level (200)")
    parser.add_argument("--rows", type=count(), default=None, help="bench: rows per request (1)")
    parser.add_argument("--json", default=None, metavar="FILE", help="bench: write the results as JSON")
    declare_outputs(parser, "output", "grafana", "json")


def run_cli(args: argparse.Namespace) -> int:
    action = args.target if args.target in ACTIONS else "serve"
    given = [dest for dests in _OPTIONS.values() for dest in dests if getattr(args, dest, None) is not None]
    for dest in given:
        if dest not in _OPTIONS[action]:
            flag = "--" + dest.replace("_", "-")
            used = "MODEL_REPO" if action == "serve" else action
            raise invalid(flag, getattr(args, dest), f"no {flag} with deepseek serve {used} (it applies to: "
                          f"{', '.join(a if a != 'serve' else 'MODEL_REPO' for a, o in _OPTIONS.items() if dest in o)})")
    if action in ("serve", "alert-rules") and args.url is not None:
        raise invalid("URL", args.url, f"nothing after {'MODEL_REPO' if action == 'serve' else action}")
    defaults = {"host": "127.0.0.1", "port": 8000, "workers": 1, "concurrency": [1, 4, 16, 64], "requests": 200,
                "rows": 1}
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    if args.target == "alert-rules":
        return _alert_rules(args)
    if args.target == "status":
        return _status(args)
    if args.target == "bench":
        return _bench(args)
    return _serve(args)


def _alert_rules(args: argparse.Namespace) -> int:
    import yaml

    from .._core.atomic import write_json, write_text
    from ..serve.slo import alert_rules, grafana_dashboard

    text = yaml.safe_dump(alert_rules(), sort_keys=False, width=200)
    if args.output:
        write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    if args.grafana:
        write_json(args.grafana, grafana_dashboard())
        print(f"wrote {args.grafana}")
    return 0


def server_url(text: str, argument: str = "URL") -> str:
    """``http://host:port`` from a URL or ``host:port`` given on the command line (no trailing slash)."""
    from urllib.parse import urlsplit

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


def _status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    if not args.url:
        raise invalid("URL", None, "the server's address, e.g. deepseek serve status http://127.0.0.1:8000")
    base = server_url(args.url)

    def call(path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    expected = "a running deepseek/KServe v2 server"
    try:
        live = call("/v2/health/live")
        index = call("/v2/repository/index", "POST")
    except (urllib.error.URLError, OSError, ValueError, OverflowError) as exc:
        raise invalid("URL", args.url, f"{expected} ({' '.join(str(exc).split())})") from None
    if not isinstance(live, dict) or not isinstance(index, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("name", "version", "state", "reason"))
            for r in index):
        raise invalid("URL", args.url, f"{expected} (its /v2/health/live or /v2/repository/index answer is not v2)")
    from .._core.table import Table
    from ._common import console

    table = Table(title=f"{base}: live={live.get('live')}", title_justify="left")
    for col in ("model", "version", "state", "traffic", "reason"):
        table.add_column(col)
    weights: dict[str, dict[str, Any]] = {}
    for row in index:
        if row["name"] not in weights:
            try:
                answer = call(f"/v2/models/{urllib.request.quote(row['name'], safe='')}/traffic")
                weights[row["name"]] = answer["weights"] if isinstance(answer, dict) and isinstance(
                    answer.get("weights"), dict) else {}
            except (urllib.error.URLError, OSError, ValueError, OverflowError):
                weights[row["name"]] = {}
        share = weights[row["name"]].get(row["version"])
        shown = f"{share:.0%}" if isinstance(share, (int, float)) and not isinstance(share, bool) else ""
        table.add_row(row["name"], row["version"], row["state"], shown, row["reason"])
    console().print(table)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..serve.bench import bench_server, results_table, served
    from ._common import console

    if not args.url:
        raise invalid("URL|MODEL_REPO", None, "a server URL or a model repository folder")
    levels = args.concurrency
    if Path(args.url).is_dir():
        from ..serve.router import ModelRouter

        if not ModelRouter(args.url, load=False)._scan():
            raise invalid("URL|MODEL_REPO", args.url, "a model repository: a folder of <model>/<version>/ folders")
    else:
        server_url(args.url, "URL|MODEL_REPO")
    with served(args.url) as url:
        result = bench_server(url, args.model, levels, requests=args.requests, rows=args.rows)
    console().print(results_table(result))
    if args.json:
        from .._core.atomic import write_json

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    repository = Path(args.target)
    if not repository.is_dir():
        raise invalid("MODEL_REPO", args.target, f"a folder of <model>/<version>/ folders, or one of {list(ACTIONS)}")
    if args.metrics_port is not None and args.metrics_port == args.port and args.port != 0:
        raise invalid("--metrics-port", args.metrics_port, f"a port other than --port ({args.port})")
    from ..serve.router import ModelRouter

    if not ModelRouter(repository, load=False)._scan() and not args.poll:
        raise invalid("MODEL_REPO", args.target, "a folder holding <model>/<version>/ folders (it holds none; "
                      "--poll SECONDS waits for them)")
    # every address is taken before any model is loaded: a port in use or a bad host fails at once
    sock = _listen(args.host, args.port, "--port")
    metrics_sock = _listen(args.host, args.metrics_port, "--metrics-port") if args.metrics_port is not None else None
    args.port = sock.getsockname()[1]
    if metrics_sock is not None:
        args.metrics_port = metrics_sock.getsockname()[1]
    import uvicorn

    if args.workers > 1:
        sock.close()  # uvicorn's supervisor binds it again for its workers
        if metrics_sock is not None:
            metrics_sock.close()
        return _serve_workers(repository, args)
    router = _load(repository, progress=True)
    if args.poll:
        router.watch(args.poll)
    if metrics_sock is not None:
        _metrics_server(metrics_sock, lambda: router.metrics.render())
    from ..serve.app import create_app

    _print_served(router, args)
    config = uvicorn.Config(create_app(router), log_level="warning", loop="auto", http="auto")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        router.close()
    return 0


def _listen(host: str, port: int, flag: str) -> Any:
    """A socket bound to ``host:port`` and listening (port 0: a free one), or an error naming the flag."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise invalid("--host", host, f"an address of this machine ({exc})") from None
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
            raise invalid(flag, port, f"a port free to listen on at {host} ({reason})") from None
        raise invalid("--host", host, f"an address of this machine to listen on ({reason})") from None
    sock.set_inheritable(True)
    return sock


def _serve_workers(repository: Path, args: argparse.Namespace) -> int:
    """``--workers N``: N processes on one port, each loading the repository; their metrics are summed from files
    in a private folder (prometheus-client's multiprocess mode), served by every worker and on ``--metrics-port``
    by this supervisor."""
    import shutil
    import tempfile

    import uvicorn

    from ..serve.metrics import MULTIPROCESS_ENV

    metrics_dir = tempfile.mkdtemp(prefix="deepseek-serve-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    os.environ[REPOSITORY_ENV] = str(repository.resolve())
    if args.poll:
        os.environ[REPOSITORY_ENV + "_POLL"] = str(args.poll)
    host = f"[{args.host}]" if ":" in args.host else args.host
    also = f", also on port {args.metrics_port}" if args.metrics_port is not None else ""
    print(f"serving {repository} on http://{host}:{args.port} with {args.workers} workers (KServe v2; /metrics{also})",
          flush=True)
    try:
        if args.metrics_port is not None:
            from ..serve.metrics import render_multiprocess

            _metrics_server(_listen(args.host, args.metrics_port, "--metrics-port"), render_multiprocess)
        uvicorn.run("deepseek.cli.serve:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="warning", loop="auto", http="auto")
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_server(sock: Any, render: Any) -> None:
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
    """The app of one ``--workers`` process (uvicorn's factory)."""
    from ..serve.app import create_app

    router = _load(Path(os.environ[REPOSITORY_ENV]), progress=False)
    poll = os.environ.get(REPOSITORY_ENV + "_POLL")
    if poll:
        router.watch(float(poll))
    return create_app(router)


def _load(repository: Path, progress: bool) -> Any:
    from ..serve.router import ModelRouter

    router = ModelRouter(repository, load=False)
    versions = sum(1 for rows in router._scan().values() for _ in rows)
    if not progress:
        router.load_repository()
        return router
    from .._core.progress import progress as bar_context

    with bar_context(transient=True) as bar:
        task = bar.add_task("loading models", total=versions)
        router.load_repository(progress=lambda name, version: bar.update(task, advance=1,
                                                                         description=f"loaded {name}/{version}"))
    return router


def _print_served(router: Any, args: argparse.Namespace) -> None:
    from .._core.table import Table
    from ._common import console

    host = f"[{args.host}]" if ":" in args.host else args.host
    metrics = f"; /metrics, also on port {args.metrics_port}" if args.metrics_port is not None else "; /metrics"
    table = Table(title=f"serving on http://{host}:{args.port} (KServe v2{metrics})", title_justify="left")
    for col in ("model", "version", "state", "default", "traffic", "batch", "reason"):
        table.add_column(col)
    for row in router.index():
        name, version = row["name"], row["version"]
        loaded = row["state"] == "READY"
        share = router.traffic(name).get(version) if loaded else None
        mv = router.resolve(name, version) if loaded else None
        table.add_row(name, version, row["state"], "yes" if loaded and router.default_version(name) == version else "",
                      "" if share is None else f"{share:.0%}",
                      f"{mv.config.max_batch_size} / {mv.config.max_queue_delay_ms:g} ms" if mv else "", row["reason"])
    console().print(table)
