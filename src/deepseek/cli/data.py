"""``deepseek data``: clean a file of text rows by rules; profile a table.

    deepseek data clean IN.{csv,jsonl,parquet} --text-columns content --rules rules.yaml --output OUT
                        [--excluded dropped.jsonl] [--report report.json] [--chunk-size 10000]
    deepseek data profile IN --json report.json --html report.html [--rules rules.yaml] [--minimal]
                          [--label-column label [--feature-columns content]]
"""

from __future__ import annotations

import argparse

# the Python argument a library error names -> the flag the user wrote
_FLAGS = {"clean": {"text_columns": "--text-columns", "rules": "--rules", "source": "input", "output": "--output",
                    "excluded": "--excluded", "report": "--report", "chunk_size": "--chunk-size"},
          "profile": {"text_columns": "--text-columns", "label_column": "--label-column", "data": "input",
                      "feature_columns": "--feature-columns", "path": "--json/--html", "column": "--rules"}}


def _columns(text: str) -> list[str]:
    """An argparse ``type`` for a comma-separated list of column names (at least one, none empty)."""
    names = [c.strip() for c in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct column names, got {text!r}")
    return names


def _column(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a column name, got {text!r}")
    return text.strip()


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs

    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    cp = sub.add_parser("clean", help="keep the rows every rule accepts; dropped rows and their reasons apart")
    cp.add_argument("input", help="a .csv, .jsonl or .parquet file (never modified)")
    cp.add_argument("--rules", required=True, metavar="YAML", help="rules.yaml: length, language, toxicity")
    cp.add_argument("--text-columns", required=True, type=_columns, help="comma-separated columns the rules read")
    cp.add_argument("--output", required=True, help="kept rows: .csv, .jsonl or .parquet")
    cp.add_argument("--excluded", default=None, help="dropped rows with drop_reason (for audit)")
    cp.add_argument("--report", default=None, help="report.json: per-rule counts and examples")
    cp.add_argument("--chunk-size", type=count(), default=10_000, help="rows in memory at once (default 10000)")
    cp.add_argument("--quiet", action="store_true", help="no progress bar")
    declare_outputs(cp, "output", "excluded", "report")
    declare_flag_names(cp, _FLAGS["clean"])
    pp = sub.add_parser("profile", help="types, missing values, distributions, duplicates, outliers; suggested rules")
    pp.add_argument("input", help="a .csv, .jsonl or .parquet file")
    pp.add_argument("--json", default=None, help="report.json")
    pp.add_argument("--html", default=None, help="a self-contained report.html with charts")
    pp.add_argument("--rules", default=None, help="write the suggested cleaner rules (YAML) here")
    pp.add_argument("--text-columns", type=_columns, default=None,
                    help="comma-separated text columns (default: detected)")
    pp.add_argument("--minimal", action="store_true",
                    help="no language mix, histograms, duplicate rows or isolation forest")
    pp.add_argument("--label-column", type=_column, default=None,
                    help="find label issues in this column (cleanlab on 5-fold out-of-fold probabilities)")
    pp.add_argument("--feature-columns", type=_columns, default=None,
                    help="comma-separated columns the label model reads (default: every other column)")
    declare_outputs(pp, "json", "html", "rules")
    declare_flag_names(pp, _FLAGS["profile"])


def run_cli(args: argparse.Namespace) -> int:
    if args.data_command == "profile":
        return _profile(args)
    return _clean(args)


def _clean(args: argparse.Namespace) -> int:
    from ..data.cleaner import DataCleaner
    from ._common import console

    cleaner = DataCleaner(args.text_columns, args.rules, chunk_size=args.chunk_size)
    report = cleaner.process_file(args.input, args.output, excluded=args.excluded, report=args.report,
                                  progress=not args.quiet)
    out = console()
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(report.dropped.items())) or "none"
    out.print(f"{report.rows:,} rows: {report.kept:,} kept, {report.rows - report.kept:,} dropped ({reasons})")
    out.print(f"kept: {args.output}" + (f"; dropped: {args.excluded}" if args.excluded else ""))
    return 0


def _profile(args: argparse.Namespace) -> int:
    import yaml

    from .._core.atomic import write_text
    from .._core.errors import invalid
    from ..data.profiler import DataProfiler
    from ._common import console

    if not (args.json or args.html or args.rules):
        raise invalid("--json/--html/--rules", None, "at least one output")
    if args.feature_columns and not args.label_column:
        raise invalid("--feature-columns", ",".join(args.feature_columns), "--label-column as well")
    columns, features = args.text_columns, args.feature_columns
    model = None
    if args.label_column:
        from ..data.anomalies import default_label_model

        model = default_label_model(text=features is not None and len(features) == 1 and (
            columns is None or features[0] in columns))
    profile = DataProfiler(minimal=args.minimal, text_columns=columns, label_column=args.label_column, model=model,
                           feature_columns=features).profile(args.input)
    # everything is computed before anything is written: a failure leaves no output behind
    rules = None
    if args.rules:
        if not any(s["text"] and "length" in s for s in profile.columns.values()):
            raise invalid("--rules", args.rules, "a table with a text column to suggest rules for (none found; "
                                                 "name one with --text-columns)")
        rules = yaml.safe_dump(profile.suggested_rules(), sort_keys=False)
    page = profile.html() if args.html else None
    if args.rules:
        write_text(args.rules, rules)
    if args.html:
        write_text(args.html, page)
    if args.json:
        profile.save_json(args.json)
    out = console()
    missing = sum(s["missing"] for s in profile.columns.values())
    outliers = sum(s.get("outliers", 0) for s in profile.columns.values())
    dup = "" if profile.duplicate_rows is None else f", {profile.duplicate_rows:,} duplicate rows"
    out.print(f"{profile.rows:,} rows x {len(profile.columns)} columns: {missing:,} missing values{dup}, "
              f"{outliers:,} outliers (robust z > {profile.z:g})")
    if profile.anomalies:
        out.print(f"anomalous rows (isolation forest): {profile.anomalies['count']:,}")
    if profile.label_issues:
        out.print(f"label issues (cleanlab): {profile.label_issues['count']:,} "
                  f"(out-of-fold accuracy {profile.label_issues['out_of_fold_accuracy']:.3f})")
    return 0
