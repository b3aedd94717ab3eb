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

from .._errors import invalid

ACTIONS = ("alert-rules", "status", "bench")
REPOSITORY_ENV = "DEEPSEEK_SERVE_REPOSITORY"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import count

    parser.add_argument("target", metavar="MODEL_REPO|alert-rules|status",
                        help="a model repository folder (models/<name>/<version>/), or an action")
    parser.add_argument("url", nargs="?", help="status/bench: the server's URL, e.g. http://127.0.0.1:8000 (bench: "
                        "or a model repository, served for the run on a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=count(0), default=8000)
    parser.add_argument("--metrics-port", type=count(1), default=None,
                        help="also expose /metrics on this port (always on the serving port too)")
    parser.add_argument("--workers", type=count(), default=1, help="server processes sharing the port")
    parser.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                        help="watch the repository: load new versions, unload removed ones")
    parser.add_argument("--output", "-o", default=None, help="alert-rules: the rules file (default: stdout)")
    parser.add_argument("--grafana", default=None, metavar="FILE", help="alert-rules: also write a Grafana dashboard")
    parser.add_argument("--model", default=None, help="bench: the model to load (default: the first served)")
    parser.add_argument("--concurrency", default="1,4,16,64", help="bench: connections, comma-separated levels")
    parser.add_argument("--requests", type=count(), default=200, help="bench: requests per concurrency level")
    parser.add_argument("--rows", type=count(), default=1, help="bench: rows per request")
    parser.add_argument("--json", default=None, metavar="FILE", help="bench: write the results as JSON")


def run_cli(args: argparse.Namespace) -> int:
    if args.target == "alert-rules":
        return _alert_rules(args)
    if args.target == "status":
        return _status(args)
    if args.target == "bench":
        return _bench(args)
    return _serve(args)


def _alert_rules(args: argparse.Namespace) -> int:
    import yaml

    from .._atomic import write_json, write_text
    from .slo import alert_rules, grafana_dashboard

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


def _status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    if not args.url:
        raise invalid("URL", None, "the server's address, e.g. deepseek serve status http://127.0.0.1:8000")
    base = args.url.rstrip("/")

    def call(path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    try:
        live = call("/v2/health/live")
        index = call("/v2/repository/index", "POST")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise invalid("URL", args.url, f"a running deepseek/KServe v2 server ({exc})") from exc
    from .._cli_common import console
    from .._table import Table

    table = Table(title=f"{base}: live={live.get('live')}", title_justify="left")
    for col in ("model", "version", "state", "traffic", "reason"):
        table.add_column(col)
    weights: dict[str, dict[str, float]] = {}
    for row in index:
        if row["name"] not in weights:
            try:
                weights[row["name"]] = call(f"/v2/models/{row['name']}/traffic")["weights"]
            except (urllib.error.URLError, OSError, ValueError):
                weights[row["name"]] = {}
        share = weights[row["name"]].get(row["version"])
        table.add_row(row["name"], row["version"], row["state"], "" if share is None else f"{share:.0%}", row["reason"])
    console().print(table)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .._cli_common import console
    from .bench import bench_server, results_table, served

    if not args.url:
        raise invalid("URL|MODEL_REPO", None, "a server URL or a model repository folder")
    try:
        levels = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        raise invalid("--concurrency", args.concurrency, "comma-separated integers, e.g. 1,4,16") from None
    if not levels or min(levels) < 1:
        raise invalid("--concurrency", args.concurrency, "levels >= 1")
    with served(args.url) as url:
        result = bench_server(url, args.model, levels, requests=args.requests, rows=args.rows)
    console().print(results_table(result))
    if args.json:
        from .._atomic import write_json

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    repository = Path(args.target)
    if not repository.is_dir():
        raise invalid("MODEL_REPO", args.target, f"a folder of <model>/<version>/ folders, or one of {list(ACTIONS)}")
    import uvicorn

    if args.workers > 1:
        return _serve_workers(repository, args)
    router = _load(repository, progress=True)
    if args.poll:
        router.watch(args.poll)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.host, registry=router.metrics.registry)
    from .app import create_app

    _print_served(router, args)
    uvicorn.run(create_app(router), host=args.host, port=args.port, log_level="warning", loop="auto", http="auto")
    router.close()
    return 0


def _serve_workers(repository: Path, args: argparse.Namespace) -> int:
    """``--workers N``: N processes on one port, each loading the repository; their metrics are summed from files
    in a private folder (prometheus-client's multiprocess mode), served by every worker and on ``--metrics-port``
    by this supervisor."""
    import shutil
    import tempfile

    import uvicorn

    from .metrics import MULTIPROCESS_ENV

    metrics_dir = tempfile.mkdtemp(prefix="deepseek-serve-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    os.environ[REPOSITORY_ENV] = str(repository.resolve())
    if args.poll:
        os.environ[REPOSITORY_ENV + "_POLL"] = str(args.poll)
    try:
        if args.metrics_port:
            _metrics_server(args.host, args.metrics_port)
        uvicorn.run("deepseek.serve.cli:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="warning", loop="auto", http="auto")
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_server(host: str, port: int) -> None:
    """Prometheus text of every worker at http://host:port/metrics, from a thread of this process."""
    import http.server
    import threading

    from .metrics import render_multiprocess

    class _Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render_multiprocess()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, port), _Metrics)
    threading.Thread(target=server.serve_forever, name="deepseek-metrics-http", daemon=True).start()


def app_from_environment() -> Any:
    """The app of one ``--workers`` process (uvicorn's factory)."""
    from .app import create_app

    router = _load(Path(os.environ[REPOSITORY_ENV]), progress=False)
    poll = os.environ.get(REPOSITORY_ENV + "_POLL")
    if poll:
        router.watch(float(poll))
    return create_app(router)


def _load(repository: Path, progress: bool) -> Any:
    from .router import ModelRouter

    router = ModelRouter(repository, load=False)
    versions = sum(1 for rows in router._scan().values() for _ in rows)
    if not progress:
        router.load_repository()
        return router
    from .._progress import progress as bar_context

    with bar_context(transient=True) as bar:
        task = bar.add_task("loading models", total=versions)
        router.load_repository(progress=lambda name, version: bar.update(task, advance=1,
                                                                         description=f"loaded {name}/{version}"))
    return router


def _print_served(router: Any, args: argparse.Namespace) -> None:
    from .._cli_common import console
    from .._table import Table

    table = Table(title=f"serving on http://{args.host}:{args.port} (KServe v2; /metrics)", title_justify="left")
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
