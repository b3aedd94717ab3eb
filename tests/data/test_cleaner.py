"""DataCleaner on real bundled text (Rotten Tomatoes reviews) plus a few foreign and abusive lines."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from deepseek import InvalidArgumentError, assets
from deepseek.data import CleaningRules, DataCleaner

pytest.importorskip("py3langid")
pytest.importorskip("profanity_check")

SPEC_RULES = {"length": (10, 512), "language": "en", "toxicity": {"threshold": 0.3}}
FOREIGN = ["Ce film est une merveille, les acteurs sont formidables et la mise en scène est superbe.",
           "Die Handlung ist langweilig und die Schauspieler wirken völlig gelangweilt.",
           "La película es aburrida y demasiado larga para lo poco que cuenta."]
ABUSIVE = ["this movie is shit and the director is a fucking idiot", "what a stupid piece of crap, you morons"]


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    reviews = assets.rotten_tomatoes().texts[:400]
    content = [*reviews, *FOREIGN, *ABUSIVE, "too short", "x" * 600, None]
    return pd.DataFrame({"id": range(len(content)), "content": content})


def test_the_spec_line_works_as_written_and_every_drop_has_its_reason(raw):
    cleaner = DataCleaner(text_columns=["content"], rules=SPEC_RULES)
    cleaned = cleaner.process(raw)
    assert isinstance(cleaned, pd.DataFrame) and list(cleaned.columns) == ["id", "content"]
    kept = set(cleaned["content"])
    assert not kept & set(FOREIGN) and not kept & set(ABUSIVE)
    assert "too short" not in kept and "x" * 600 not in kept
    report = cleaner.report.to_dict()
    assert report["rows"] == len(raw) and report["kept"] == len(cleaned)
    assert report["dropped"]["missing"] == 1
    assert report["dropped"]["length"] >= 2 and report["dropped"]["language"] >= 3 and report["dropped"]["toxicity"] >= 2
    assert sum(report["dropped"].values()) == report["dropped_total"] == len(raw) - len(cleaned)
    assert len(cleaned) > 0.85 * 400  # real English reviews mostly pass
    annotated = cleaner.annotate(raw)
    assert len(annotated) == len(raw)
    assert {"drop_reason", "length", "language", "language_score", "toxicity_score"} <= set(annotated.columns)
    by_text = annotated.set_index("content")
    for text in FOREIGN:
        assert by_text.loc[text, "drop_reason"] == "language" and by_text.loc[text, "language"] != "en"
    for text in ABUSIVE:
        assert by_text.loc[text, "drop_reason"] == "toxicity" and by_text.loc[text, "toxicity_score"] > 0.3
    assert annotated["drop_reason"].isna().sum() == len(cleaned)
    assert all(r is None for r in annotated["drop_reason"] if not isinstance(r, str))  # None when kept, not NaN


def test_length_bounds_are_inclusive_in_the_unit_asked():
    frame = pd.DataFrame({"t": ["a" * 9, "a" * 10, "a" * 12, "a" * 13, "one two three", "one two three four"]})
    chars = DataCleaner(["t"], {"length": {"min": 10, "max": 12}}).process(frame)
    assert chars["t"].tolist() == ["a" * 10, "a" * 12]  # "one two three" is 13 characters
    words = DataCleaner(["t"], {"length": {"min": 2, "max": 3, "unit": "words"}}).process(frame)
    assert words["t"].tolist() == ["one two three"]


def test_the_input_type_is_kept_and_files_stream_with_an_exclusion_file(raw, tmp_path):
    import pyarrow as pa

    cleaner = DataCleaner(["content"], SPEC_RULES, chunk_size=64)
    table = pa.Table.from_pandas(raw, preserve_index=False)
    kept_table = cleaner.process(table)
    expected = DataCleaner(["content"], SPEC_RULES).process(raw)
    assert isinstance(kept_table, pa.Table) and kept_table.column("id").to_pylist() == expected["id"].tolist()
    for suffix in (".csv", ".jsonl", ".parquet"):
        source = tmp_path / f"raw{suffix}"
        if suffix == ".csv":
            raw.to_csv(source, index=False)
        elif suffix == ".jsonl":
            raw.to_json(source, orient="records", lines=True)
        else:
            raw.to_parquet(source, index=False)
        before = source.read_bytes()
        out, dropped = tmp_path / f"kept{suffix}", tmp_path / "dropped.jsonl"
        report = cleaner.process_file(source, out, excluded=dropped)
        assert source.read_bytes() == before  # the input is never modified
        kept = (pd.read_csv(out) if suffix == ".csv" else pd.read_json(out, lines=True) if suffix == ".jsonl"
                else pd.read_parquet(out))
        assert kept["id"].tolist() == expected["id"].tolist(), suffix
        lines = [json.loads(line) for line in dropped.read_text().splitlines()]
        assert len(lines) == len(raw) - len(expected) == report.rows - report.kept
        assert {line["drop_reason"] for line in lines} == {"missing", "length", "language", "toxicity"}
        assert cleaner.process(source)["id"].tolist() == expected["id"].tolist()


def test_a_custom_toxicity_scorer_replaces_the_default():
    frame = pd.DataFrame({"t": ["a fine sentence in english here", "another fine sentence in english"]})
    cleaner = DataCleaner(["t"], {"toxicity": {"threshold": 0.5}},
                          toxicity_scorer=lambda texts: [0.9 if "another" in t else 0.1 for t in texts])
    assert cleaner.process(frame)["t"].tolist() == ["a fine sentence in english here"]
    broken = DataCleaner(["t"], {"toxicity": 0.5}, toxicity_scorer=lambda texts: [2.0] * len(texts))
    with pytest.raises(InvalidArgumentError, match="toxicity_scorer"):
        broken.process(frame)


def test_rules_round_trip_as_data(tmp_path):
    rules = CleaningRules.of(SPEC_RULES)
    again = CleaningRules.of(rules.to_dict())
    assert again == rules
    path = tmp_path / "rules.yaml"
    path.write_text(rules.to_yaml())
    assert CleaningRules.of(path) == rules
    assert rules.to_dict() == {"version": 1, "length": {"min": 10, "max": 512, "unit": "chars", "tokenizer": None},
                               "language": {"languages": ["en"], "min_score": 0.5},
                               "toxicity": {"threshold": 0.3}}


@pytest.mark.parametrize(("rules", "match"), [
    ({"lenght": (1, 2)}, "lenght"),
    ({"length": (20, 10)}, "min <= max"),
    ({"length": {"min": 1, "unit": "tokens!"}}, "unit"),
    ({"language": "xx-notalanguage"}, "language"),
    ({"toxicity": {"threshold": 3}}, "threshold"),
    ({"version": 9}, "version"),
])
def test_bad_rules_are_refused_naming_the_rule(rules, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DataCleaner(["t"], rules)


def test_bad_data_is_refused_naming_the_column_or_file(tmp_path):
    cleaner = DataCleaner(["content"], {"length": (1, 10)})
    with pytest.raises(InvalidArgumentError, match="content"):
        cleaner.process(pd.DataFrame({"text": ["a"]}))
    with pytest.raises(InvalidArgumentError, match=r"column 'content'.*int"):
        cleaner.process(pd.DataFrame({"content": ["a", 5]}))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidArgumentError, match=r"bad\.parquet"):
        cleaner.process(bad)
    with pytest.raises(InvalidArgumentError, match="data"):
        cleaner.process([{"content": "a"}])
    src = tmp_path / "in.csv"
    pd.DataFrame({"content": ["hello"]}).to_csv(src, index=False)
    with pytest.raises(InvalidArgumentError, match="output"):
        cleaner.process_file(src, src)


def test_cli_clean_writes_kept_dropped_and_report(raw, tmp_path):
    import subprocess
    import sys

    raw.to_parquet(tmp_path / "raw.parquet", index=False)
    (tmp_path / "rules.yaml").write_text(CleaningRules.of(SPEC_RULES).to_yaml())
    done = subprocess.run([sys.executable, "-m", "deepseek", "data", "clean", "raw.parquet", "--rules", "rules.yaml",
                           "--text-columns", "content", "--output", "kept.jsonl", "--excluded", "dropped.csv",
                           "--report", "report.json", "--quiet"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    expected = DataCleaner(["content"], SPEC_RULES).process(raw)
    assert pd.read_json(tmp_path / "kept.jsonl", lines=True)["id"].tolist() == expected["id"].tolist()
    dropped = pd.read_csv(tmp_path / "dropped.csv")
    assert len(dropped) == len(raw) - len(expected) and dropped["drop_reason"].notna().all()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kept"] == len(expected) and "kept" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "deepseek", "data", "clean", "raw.parquet", "--rules", "rules.yaml",
                          "--text-columns", "body", "--output", "k.csv"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and "--text-columns" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "k.csv").exists()  # nothing half-written


def test_a_hugging_face_dataset_comes_back_as_a_dataset_with_masked_text():
    datasets = pytest.importorskip("datasets")
    rows = {"content": ["mail me at someone@example.org about this fine film, it is great",
                        "too short", "Ce film est une merveille, les acteurs sont formidables."],
            "id": [0, 1, 2]}
    data = datasets.Dataset.from_dict(rows)
    out = DataCleaner(["content"], {"length": (20, 512), "language": "en", "pii": True}).process(data)
    assert isinstance(out, datasets.Dataset)
    assert out["id"] == [0] and out["content"] == ["mail me at <EMAIL> about this fine film, it is great"]
