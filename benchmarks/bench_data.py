"""deepseek.data: cleaner throughput, language identification accuracy, profiler time; one run.

    python benchmarks/bench_data.py [--rows 1000000] [--smoke]

- Cleaner, SPEC's three rules (length 10-512 characters, English, toxicity 0.3) on the 12,808 real Rotten Tomatoes
  reviews (bundled): documents/s, and what each rule dropped. The length rule alone on the reviews repeated to
  ``--rows`` rows: rows/s. datatrove (the peer) needs its own environment here (its pins; its language filter
  downloads a model): not run yet.
- Language identification (py3langid, as the language rule uses it) on Debian's fortune packages (``fortunes``,
  ``fortunes-de`` ... ``fortunes-zh``: real text labeled by the package's language; up to 300 entries of >= 20
  characters per language): accuracy per language and overall. Skipped (and said) when they are not installed.
- Profiler, minimal mode, on ``--rows`` rows x 20 columns (the reviews, their labels, and 18 numeric columns —
  synthetic: no real 20-column table of this size ships offline): seconds and how much the peak resident
  memory grew while profiling.
Writes benchmarks/results/data.json. ``--smoke``: 2,000 reviews, 20,000 rows, 20 fortunes per language.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._machine import describe, summary
from deepseek.data import DataCleaner, DataProfiler

SPEC_RULES = {"length": (10, 512), "language": "en", "toxicity": {"threshold": 0.3}}
FORTUNES = {"fortunes": "en", "fortunes-de": "de", "fortunes-es": "es", "fortunes-it": "it", "fortunes-pl": "pl",
            "fortunes-ru": "ru", "fortunes-cs": "cs", "fortunes-br": "pt", "fortunes-bg": "bg", "fortunes-eo": "eo",
            "fortunes-ga": "ga", "fortunes-zh": "zh"}


def fortunes(per_language: int, seed: int = 0) -> dict[str, list[str]]:
    """Entries of the installed fortune packages by language (the files each package installed, from dpkg)."""
    out: dict[str, list[str]] = {}
    rng = random.Random(seed)
    for package, lang in FORTUNES.items():
        listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        if listed.returncode != 0:
            continue
        found: set[str] = set()
        for name in listed.stdout.splitlines():
            path = Path(name)
            if (not path.is_file() or path.is_symlink() or path.suffix in (".dat", ".u8")
                    or "/fortunes/" not in name or "/off/" in name):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for entry in re.split(r"\n%\n", text):
                lines = [line for line in entry.splitlines() if not re.match(r"^\s*--", line)]
                joined = " ".join(" ".join(lines).split())
                if len(joined) >= 20:
                    found.add(joined)
        if found:
            entries = sorted(found)
            out[lang] = rng.sample(entries, min(per_language, len(entries)))
    return out


def cleaner_rows(reviews: list[str], rows: int) -> dict[str, Any]:
    frame = pd.DataFrame({"content": reviews})
    cleaner = DataCleaner(["content"], SPEC_RULES)
    cleaner.process(frame.head(50))  # load the language and toxicity models outside the timing
    t0 = time.perf_counter()
    kept = cleaner.process(frame)
    seconds = time.perf_counter() - t0
    spec = {"documents": len(frame), "kept": len(kept), "dropped": dict(cleaner.report.dropped),
            "seconds": seconds, "documents_per_s": len(frame) / seconds}
    big = pd.DataFrame({"content": (reviews * (rows // len(reviews) + 1))[:rows]})
    length = DataCleaner(["content"], {"length": (10, 512)}, chunk_size=rows)
    t0 = time.perf_counter()
    length.process(big)
    seconds = time.perf_counter() - t0
    return {"spec_rules": spec, "length_only": {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}}


def language_accuracy(per_language: int) -> dict[str, Any]:
    from deepseek.data.language import identify

    data = fortunes(per_language)
    if not data:
        return {"skipped": "Debian's fortune packages are not installed (make install adds them)"}
    per, right, total = {}, 0, 0
    t0 = time.perf_counter()
    for lang, texts in data.items():
        codes, _ = identify(texts)
        hits = sum(c == lang for c in codes)
        per[lang] = {"n": len(texts), "accuracy": hits / len(texts),
                     "confused_with": Counter(c for c in codes if c != lang).most_common(3)}
        right, total = right + hits, total + len(texts)
    return {"languages": len(data), "documents": total, "accuracy": right / total, "per_language": per,
            "documents_per_s": total / (time.perf_counter() - t0)}


def profiler_rows(reviews: list[str], labels: list[int], rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    reps = rows // len(reviews) + 1
    frame = pd.DataFrame({"content": (reviews * reps)[:rows], "label": (labels * reps)[:rows],
                          **{f"x{i}": rng.normal(size=rows) for i in range(18)}})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    profile = DataProfiler(minimal=True).profile(frame)
    seconds = time.perf_counter() - t0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB the peak resident set grew by
    return {"rows": rows, "columns": frame.shape[1], "seconds": seconds, "peak_rss_growth_mb": grown / 1024,
            "frame_mb": frame.memory_usage(deep=True).sum() / 2**20,
            "outliers": {k: v.get("outliers") for k, v in profile.columns.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    add_smoke_flag(parser)
    args = parser.parse_args()
    ds = assets.rotten_tomatoes()
    reviews, labels = (ds.texts[:2000], ds.labels[:2000]) if args.smoke else (ds.texts, ds.labels)
    rows = 20_000 if args.smoke else args.rows
    results: dict[str, Any] = {"machine": describe(summary(threads=1)), "smoke": args.smoke}
    results["cleaner"] = cleaner_rows(reviews, rows)
    print(f"cleaner, SPEC's rules: {results['cleaner']['spec_rules']['documents_per_s']:,.0f} documents/s "
          f"(dropped {results['cleaner']['spec_rules']['dropped']}); length only: "
          f"{results['cleaner']['length_only']['rows_per_s']:,.0f} rows/s", flush=True)
    results["language_id"] = language_accuracy(20 if args.smoke else 300)
    if "accuracy" in results["language_id"]:
        print(f"language identification: {100 * results['language_id']['accuracy']:.1f} % on "
              f"{results['language_id']['documents']} fortunes in {results['language_id']['languages']} languages",
              flush=True)
    results["profiler"] = profiler_rows(reviews, labels, rows)
    print(f"profiler, minimal, {rows:,} x 20: {results['profiler']['seconds']:.1f} s, peak resident memory "
          f"+{results['profiler']['peak_rss_growth_mb']:.0f} MB (the table itself: "
          f"{results['profiler']['frame_mb']:.0f} MB)", flush=True)
    results["peers"] = {"datatrove": "not run: needs its own environment (datatrove[processing] + spaCy; its "
                        "language filter downloads fastText's model)",
                        "ydata-profiling": "not run: its pins downgrade numpy, pandas, matplotlib and scipy"}
    write_results(args, "data.json", results)


if __name__ == "__main__":
    main()
