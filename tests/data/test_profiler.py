"""DataProfiler on real reviews with planted problems: missing values, duplicates, outliers; profile -> clean."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from deepseek import InvalidArgumentError, assets
from deepseek.data import DataCleaner, DataProfiler

pytest.importorskip("py3langid")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    ds = assets.rotten_tomatoes()
    n = 3000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"content": ds.texts[:n], "label": ds.labels[:n], "score": rng.normal(size=n)})
    df.loc[10, "score"] = 40.0  # an outlier
    df.loc[[3, 4], "content"] = None  # missing texts
    df.loc[20, "content"] = "word " * 400  # far longer than the rest
    return pd.concat([df, df.iloc[100:110]], ignore_index=True)  # 10 duplicate rows


def test_the_profile_counts_what_was_planted(frame, tmp_path):
    profile = DataProfiler().profile(frame)
    d = profile.to_dict()
    assert d["rows"] == len(frame) and d["duplicate_rows"] == 10
    content, score, label = (d["columns"][c] for c in ("content", "score", "label"))
    assert content["text"] and content["missing"] == 2 and content["kinds"] == {"str": len(frame) - 2}
    assert content["languages"]["en"] > 0.9
    assert content["length"]["max"] == len("word " * 400) and content["outliers"] >= 1
    assert score["numeric"]["max"] == 40.0 and score["outliers"] >= 1
    assert abs(score["numeric"]["mean"] - frame["score"].mean()) < 1e-9
    assert abs(score["numeric"]["std"] - frame["score"].std(ddof=0)) < 1e-9
    assert label["distinct"] == 2 and not label["text"]
    json.loads(profile.save_json(tmp_path / "p.json").read_text())
    page = profile.save_html(tmp_path / "p.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page and "content" in page


def test_the_suggested_rules_drop_what_the_profile_flagged(frame):
    rules = DataProfiler().profile(frame).suggested_rules()
    assert rules["language"]["languages"] == ["en"] and rules["dedup"] == {"exact": True}
    cleaner = DataCleaner(["content"], rules)
    kept = cleaner.process(frame)
    assert "word " * 400 not in set(kept["content"])
    # the 10 planted rows, and texts the real reviews repeat (same snippet, another critic)
    assert cleaner.report.dropped["duplicate"] >= 10 and cleaner.report.dropped["missing"] == 2


def test_a_file_is_profiled_in_chunks_with_the_same_result(frame, tmp_path):
    path = tmp_path / "f.parquet"
    frame.to_parquet(path, index=False)
    whole = DataProfiler(minimal=True).profile(frame).to_dict()
    chunked = DataProfiler(minimal=True, chunk_size=257).profile(path).to_dict()
    for c in ("content", "score", "label"):
        a, b = whole["columns"][c], chunked["columns"][c]
        assert a["missing"] == b["missing"] and a["distinct"] == b["distinct"] and a["outliers"] == b["outliers"]
    assert whole["duplicate_rows"] is None and "languages" not in whole["columns"]["content"]


def test_large_columns_switch_to_an_estimated_distinct_count():
    df = pd.DataFrame({"k": [f"key-{i}" for i in range(5000)]})
    d = DataProfiler(max_exact_distinct=1000, minimal=True).profile(df).to_dict()["columns"]["k"]
    assert not d["distinct_exact"] and abs(d["distinct"] - 5000) < 250  # HyperLogLog++ p=14: ~1 % error


def test_cli_profile_writes_its_reports_and_bad_input_is_one_line(frame, tmp_path):
    frame.to_csv(tmp_path / "f.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "deepseek", "data", "profile", "f.csv", "--json", "p.json",
                           "--html", "p.html", "--rules", "rules.yaml"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "duplicate rows" in done.stdout
    assert DataCleaner(["content"], tmp_path / "rules.yaml").rules.length is not None
    bad = subprocess.run([sys.executable, "-m", "deepseek", "data", "profile", "missing.csv", "--json", "p2.json"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and "missing.csv" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(InvalidArgumentError, match="z"):
        DataProfiler(z=0)


def test_numbers_in_an_object_column_get_numeric_statistics():
    df = pd.DataFrame({"v": pd.Series([1, 2, 3, None, 4], dtype=object)})
    d = DataProfiler(minimal=True).profile(df).to_dict()["columns"]["v"]
    assert d["kinds"] == {"int": 4} and d["missing"] == 1
    assert d["numeric"]["mean"] == 2.5 and d["numeric"]["max"] == 4.0
