"""``deepseek serve``: serve a model repository over HTTP (KServe v2), write the alert rules, check a server.

    deepseek serve MODEL_REPO [--host 127.0.0.1] [--port 8000] [--metrics-port 8002] [--workers N] [--poll 5]
    deepseek serve alert-rules [-o rules.yml] [--grafana dashboard.json]
    deepseek serve status URL
    deepseek serve bench URL|MODEL_REPO [--model NAME] [--concurrency 1,4,16,64] [--requests 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._core.errors import invalid

ACTIONS = ("alert-rules", "status", "bench")
MAX_WORKERS = 256  # as deepseek.serve.server (not imported here: --help stays fast)
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
    if not text or len(text) > 253 or any(c.isspace() or c in "/@?#" for c in text) or text.count(":") == 1:
        raise argparse.ArgumentTypeError(f"expected a host name or IP address such as 127.0.0.1 or ::1, got {text!r}")
    return text


def _concurrency(text: str) -> list[int]:
    """An argparse ``type`` for comma-separated connection counts, each 1-4096."""
    try:
        levels = [int(c) for c in text.split(",")]
    except ValueError:
        levels = []
    if not levels or not all(1 <= level <= MAX_CONCURRENCY for level in levels):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers 1-{MAX_CONCURRENCY}, e.g. 1,4,16, "
                                         f"got {text!r}")
    return levels


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs, number, port

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
    declare_flag_names(parser, {"repository": "MODEL_REPO", "url": "URL"})


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
    return {"alert-rules": _alert_rules, "status": _status, "bench": _bench}.get(args.target, _serve)(args)


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


def _status(args: argparse.Namespace) -> int:
    from .._core.table import Table
    from ..serve.server import status
    from ._common import console

    if not args.url:
        raise invalid("URL", None, "the server's address, e.g. deepseek serve status http://127.0.0.1:8000")
    found = status(args.url)
    table = Table(title=f"{found['url']}: live={found['live']}", title_justify="left")
    for col in ("model", "version", "state", "traffic", "reason"):
        table.add_column(col)
    for row in found["models"]:
        share = "" if row["traffic"] is None else f"{row['traffic']:.0%}"
        table.add_row(row["name"], row["version"], row["state"], share, row["reason"])
    console().print(table)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..serve.bench import bench_server, results_table, served
    from ._common import console

    if not args.url:
        raise invalid("URL|MODEL_REPO", None, "a server URL or a model repository folder")
    levels = args.concurrency
    from ..serve.server import check_repository, server_url

    if Path(args.url).is_dir():
        check_repository(args.url, argument="URL|MODEL_REPO")
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
    from urllib.parse import urlsplit

    from ..serve.server import run

    if not Path(args.target).is_dir():
        raise invalid("MODEL_REPO", args.target, f"a folder of <model>/<version>/ folders, or one of {list(ACTIONS)}")

    def ready(router: Any, url: str, metrics_url: str | None) -> None:
        if router is None:
            also = f", also on port {urlsplit(metrics_url).port}" if metrics_url else ""
            print(f"serving {args.target} on {url} with {args.workers} workers (KServe v2; /metrics{also})", flush=True)
        else:
            _print_served(router, url, metrics_url)

    run(args.target, host=args.host, port=args.port, metrics_port=args.metrics_port, workers=args.workers,
        poll=args.poll, progress=True, on_ready=ready)
    return 0


def _print_served(router: Any, url: str, metrics_url: str | None) -> None:
    from urllib.parse import urlsplit

    from .._core.table import Table
    from ._common import console

    metrics = f"; /metrics, also on port {urlsplit(metrics_url).port}" if metrics_url else "; /metrics"
    table = Table(title=f"serving on {url} (KServe v2{metrics})", title_justify="left")
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
