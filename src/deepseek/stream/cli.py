"""``deepseek stream``: replay transactions through a feature pipeline and a risk engine, and report.

    deepseek stream replay transactions.csv|.parquet --config stream.yaml --report out/ [--limit N] [--k 100]
    deepseek stream simulate out.parquet [--customers 5000 --terminals 10000 --days 183 --seed 0]
    deepseek stream scale transactions.parquet --config stream.yaml --workers 2 --output features.parquet
                          [--redis redis://host:6379/0] [--partitions 8]
    deepseek stream publish transactions.parquet --redis URL --config stream.yaml [--name deepseek]
    deepseek stream worker --redis URL --config stream.yaml [--name deepseek]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._errors import invalid


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import count

    sub = parser.add_subparsers(dest="stream_command", metavar="ACTION", required=True)
    rp = sub.add_parser("replay", help="score a file of transactions as a live stream; metrics, latency, charts")
    rp.add_argument("transactions", help="a .csv or .parquet file, one transaction per row, in arrival order")
    rp.add_argument("--config", default=None, metavar="YAML", help="stream.yaml (default: SPEC's three features, "
                    "logistic regression, dynamic threshold from 0.85)")
    rp.add_argument("--report", required=True, metavar="DIR", help="report.json/.md, daily.csv and PNGs go here")
    rp.add_argument("--limit", type=count(), default=None, help="replay only the first N rows")
    rp.add_argument("--k", type=count(), default=100, help="k of card-precision@k (default 100)")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = sub.add_parser("simulate", help="write the Fraud-Detection Handbook's simulated transactions")
    sp.add_argument("output", help="a .csv or .parquet file to write (never an existing input)")
    sp.add_argument("--customers", type=count(), default=5000)
    sp.add_argument("--terminals", type=count(), default=10000)
    sp.add_argument("--days", type=count(), default=183)
    sp.add_argument("--seed", type=int, default=0)

    def redis_options(p: argparse.ArgumentParser, url_required: bool) -> None:
        p.add_argument("--config", default=None, metavar="YAML", help="stream.yaml: the features (default: SPEC's "
                       "three); every worker of a pool must use the same")
        p.add_argument("--redis", required=url_required, default=None, metavar="URL",
                       help="redis://host:port/db" + ("" if url_required else
                                                      " (default: start a throwaway redis-server on 127.0.0.1)"))
        p.add_argument("--name", default=None, help="key prefix of the streams and state (default: deepseek; "
                       "scale: a fresh one per run)")
        p.add_argument("--partitions", type=count(), default=8, help="streams the events are split into by key "
                       "(default 8; at least the number of workers)")
        p.add_argument("--batch", type=count(), default=256, help="events a worker reads and commits at once")
        p.add_argument("--lease", type=float, default=3.0, metavar="SECONDS",
                       help="how long a silent worker keeps its partitions (default 3)")

    sc = sub.add_parser("scale", help="compute a file's features with N worker processes over Redis Streams")
    sc.add_argument("transactions", help="a .csv or .parquet file, one transaction per row, in arrival order")
    sc.add_argument("--workers", type=count(), default=2, help="worker processes (default 2)")
    sc.add_argument("--output", required=True, help="a .csv or .parquet file for tx_id + features, in input order")
    sc.add_argument("--limit", type=count(), default=None, help="only the first N rows")
    sc.add_argument("--quiet", action="store_true", help="no progress bar")
    redis_options(sc, url_required=False)
    pb = sub.add_parser("publish", help="append a file's transactions to the Redis streams, partitioned by key")
    pb.add_argument("transactions", help="a .csv or .parquet file")
    pb.add_argument("--limit", type=count(), default=None, help="only the first N rows")
    redis_options(pb, url_required=True)
    wk = sub.add_parser("worker", help="run one worker of a pool until SIGTERM (features into {name}:out)")
    redis_options(wk, url_required=True)


def run_cli(args: argparse.Namespace) -> int:
    from .._cli_common import console

    if args.stream_command == "simulate":
        return _simulate(args)
    if args.stream_command in ("scale", "publish", "worker"):
        from .scale import run_redis_command

        return run_redis_command(args)
    from .config import StreamConfig
    from .replay import replay
    from .report import write_report

    config = StreamConfig.from_yaml(args.config) if args.config else StreamConfig()
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
    from .._atomic import atomic_path
    from .._cli_common import console
    from .simulate import simulate_transactions

    path = Path(args.output)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise invalid("output", str(path), "a .csv or .parquet file name")
    frame = simulate_transactions(args.customers, args.terminals, args.days, seed=args.seed)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    console().print(f"{len(frame):,} transactions ({100 * frame['is_fraud'].mean():.2f} % fraud) -> {path}")
    return 0
