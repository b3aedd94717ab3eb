"""``deepseek stream``: replay transactions through a feature pipeline and a risk engine, and report.

    deepseek stream replay transactions.csv|.parquet --config stream.yaml --report out/ [--limit N] [--k 100]
    deepseek stream simulate out.parquet [--customers 5000 --terminals 10000 --days 183 --seed 0] [--overwrite]
    deepseek stream scale transactions.parquet --config stream.yaml --workers 2 --output features.parquet
                          [--redis redis://host:6379/0] [--partitions 8]
    deepseek stream publish transactions.parquet --redis URL --config stream.yaml [--name deepseek]
    deepseek stream worker --redis URL --config stream.yaml [--name deepseek]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._core.errors import invalid

# the Python argument a library error names -> the flag the user wrote
# (names equal to a flag's dest need no entry: ``partitions`` is ``--partitions``)
_FLAGS = {"url": "--redis", "config.url": "--redis", "lease_s": "--lease", "folder": "--report",
          "config_path": "--config", "source": "transactions"}


def redis_url(text: str) -> str:
    """An argparse ``type`` for a Redis URL: ``redis://host:port/db``, ``rediss://...`` or ``unix:///path``."""
    from urllib.parse import urlsplit

    expected = f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {text!r}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if any(c.isspace() for c in text) or parts.scheme not in ("redis", "rediss", "unix"):
        raise argparse.ArgumentTypeError(expected)
    if parts.scheme == "unix":
        if not parts.path:
            raise argparse.ArgumentTypeError(expected)
        return text
    if not parts.hostname or port == 0 or (parts.path.strip("/") and not parts.path.strip("/").isdigit()):
        raise argparse.ArgumentTypeError(expected)
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs, number

    sub = parser.add_subparsers(dest="stream_command", metavar="ACTION", required=True)
    rp = sub.add_parser("replay", help="score a file of transactions as a live stream; metrics, latency, charts")
    rp.add_argument("transactions", help="a .csv or .parquet file, one transaction per row, in arrival order")
    rp.add_argument("--config", default=None, metavar="YAML", help="stream.yaml (default: the three fraud "
                    "features (transaction_amount_std, login_location_entropy, device_fingerprint_match), "
                    "logistic regression, dynamic threshold from 0.85)")
    rp.add_argument("--report", required=True, metavar="DIR", help="report.json/.md, daily.csv and PNGs go here")
    rp.add_argument("--limit", type=count(), default=None, help="replay only the first N rows")
    rp.add_argument("--k", type=count(), default=100, help="k of card-precision@k (default 100)")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    declare_outputs(rp, folders=("report",))
    sp = sub.add_parser("simulate", help="write the Fraud-Detection Handbook's simulated transactions")
    sp.add_argument("output", metavar="OUTPUT", help="a .csv or .parquet file to write (an existing file only with --overwrite)")
    sp.add_argument("--customers", type=count(), default=5000)
    sp.add_argument("--terminals", type=count(), default=10000)
    sp.add_argument("--days", type=count(), default=183)
    sp.add_argument("--seed", type=count(0), default=0)
    sp.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    declare_outputs(sp, "output")

    def redis_options(p: argparse.ArgumentParser, url_required: bool) -> None:
        p.add_argument("--config", default=None, metavar="YAML", help="stream.yaml: the features (default: "
                       "the three fraud features transaction_amount_std, login_location_entropy, "
                       "device_fingerprint_match); every worker of a pool must use the same")
        p.add_argument("--redis", required=url_required, default=None, metavar="URL", type=redis_url,
                       help="redis://host:port/db" + ("" if url_required else
                                                      " (default: start a throwaway redis-server on 127.0.0.1)"))
        p.add_argument("--name", default=None, help="key prefix of the streams and state (default: deepseek; "
                       "scale: a fresh one per run)")
        p.add_argument("--partitions", type=count(), default=8, help="streams the events are split into by key "
                       "(default 8; at least the number of workers)")
        p.add_argument("--batch", type=count(), default=256, help="events a worker reads and commits at once")
        p.add_argument("--lease", type=number(above=0), default=3.0, metavar="SECONDS",
                       help="how long a silent worker keeps its partitions (default 3)")

    sc = sub.add_parser("scale", help="compute a file's features with N worker processes over Redis Streams")
    sc.add_argument("transactions", help="a .csv or .parquet file, one transaction per row, in arrival order")
    sc.add_argument("--workers", type=count(), default=2, help="worker processes (default 2)")
    sc.add_argument("--output", required=True, help="a .csv or .parquet file for tx_id + features, in input order")
    sc.add_argument("--limit", type=count(), default=None, help="only the first N rows")
    sc.add_argument("--quiet", action="store_true", help="no progress bar")
    redis_options(sc, url_required=False)
    declare_outputs(sc, "output")
    pb = sub.add_parser("publish", help="append a file's transactions to the Redis streams, partitioned by key")
    pb.add_argument("transactions", help="a .csv or .parquet file")
    pb.add_argument("--limit", type=count(), default=None, help="only the first N rows")
    redis_options(pb, url_required=True)
    wk = sub.add_parser("worker", help="run one worker of a pool until SIGTERM (features into {name}:out)")
    redis_options(wk, url_required=True)
    for action_parser in sub.choices.values():
        declare_flag_names(action_parser, _FLAGS)


def run_cli(args: argparse.Namespace) -> int:
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ._common import console

    if args.stream_command == "simulate":
        return _simulate(args)
    if args.stream_command in ("scale", "publish", "worker"):
        return _redis_command(args)
    from ..stream.config import StreamConfig
    from ..stream.replay import replay
    from ..stream.report import write_report

    config = StreamConfig.from_yaml(args.config, argument="--config") if args.config else StreamConfig()
    result = replay(args.transactions, config, limit=args.limit, progress=not args.quiet)
    summary = write_report(result, args.report, k=args.k)
    out = console()
    out.print(f"{summary['scored']:,} events scored, {summary['alerts']:,} alerts "
              f"({100 * summary['alert_rate']:.2f} %), latency p50 {summary['latency_us']['p50']:.1f} µs / "
              f"p99 {summary['latency_us']['p99']:.1f} µs")
    if "precision" in summary:
        out.print(f"precision {summary['precision']:.3f}  recall {summary['recall']:.3f}  F1 {summary['f1']:.3f}  "
                  f"average precision {summary['average_precision']:.3f}"
                  + (f"  card-precision@{args.k} {summary[f'card_precision_at_{args.k}_mean']:.3f}"
                     if f"card_precision_at_{args.k}_mean" in summary else ""))
    out.print(f"report: {Path(args.report) / 'report.md'}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .._core.atomic import atomic_path, check_output
    from ..stream.simulate import simulate_transactions
    from ._common import console

    path = Path(args.output)
    check_output(path, argument="OUTPUT")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise invalid("OUTPUT", str(path), "a .csv or .parquet file name")
    if path.exists() and not args.overwrite:
        raise invalid("OUTPUT", str(path), "a file that does not exist yet (it may be someone's data: pass "
                                           "--overwrite to replace it)")
    frame = simulate_transactions(args.customers, args.terminals, args.days, seed=args.seed)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    console().print(f"{len(frame):,} transactions ({100 * frame['is_fraud'].mean():.2f} % fraud) -> {path}")
    return 0


def _redis_command(args: argparse.Namespace) -> int:
    """``deepseek stream scale | publish | worker``."""
    from ..stream.redis_streams import RedisStreamConfig, check_reachable, partition_key, publish
    from ..stream.scale import pipeline_factory, scale_file
    from ..stream.worker import run_worker_process
    from ._common import console

    out = console()
    if args.stream_command == "scale" and args.partitions < args.workers:
        raise invalid("--partitions", args.partitions, f"at least --workers ({args.workers}): a worker without a "
                                                       "partition has nothing to do")
    if args.stream_command == "scale":
        if args.config:
            pipeline_factory(args.config, argument="--config")  # a bad file named by its flag
        s = scale_file(args.transactions, args.output, config_path=args.config, workers=args.workers,
                       url=args.redis, partitions=args.partitions, batch=args.batch, lease_s=args.lease,
                       name=args.name, limit=args.limit, progress=not args.quiet)
        out.print(f"{s['events']:,} events -> {s['features']:,} feature rows, {s['dead']:,} dead letters, "
                  f"{s['workers']} workers over {s['partitions']} partitions: "
                  f"{s['events_per_s']:,.0f} events/s end to end")
        out.print(f"features: {s['output']}" + (f"; refused events: {s['dead_letters']}" if s["dead"] else ""))
        return 0
    config = RedisStreamConfig(url=args.redis, name=args.name or "deepseek", partitions=args.partitions,
                               batch=args.batch, lease_s=args.lease)
    factory = pipeline_factory(args.config, argument="--config")
    partition_key(factory())
    check_reachable(config.url, argument="--redis")
    if args.stream_command == "publish":
        from ..stream.replay import read_transactions

        frame = read_transactions(args.transactions)
        if args.limit is not None:
            frame = frame.iloc[:args.limit]
        n = publish(frame.to_dict("records"), config, factory())
        out.print(f"{n:,} events -> {config.name}:in:0..{config.partitions - 1} at {config.url}")
        return 0
    stats = run_worker_process(factory, config)
    out.print(f"worker stopped: {stats.applied:,} events applied, {stats.dead:,} dead letters, "
              f"{stats.claimed:,} claimed from other workers, {stats.duplicates:,} duplicates skipped")
    return 0
