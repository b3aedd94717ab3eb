"""Bad input to ``deepseek data`` and its Python API: one clear line naming the flag or argument, exit 2, the
inputs untouched and no output left behind (issue 28)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from _refusals import leaves_unchanged, refused
from deepseek import InvalidArgumentError
from deepseek.cli import _run
from deepseek.data import DataCleaner, DataProfiler


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"content": ["hello world, a text", "another line of text", "more text here"],
                  "n": [1, 2, 3]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [4, 5, 6]}).to_csv(tmp_path / "nums.csv", index=False)
    (tmp_path / "r.yaml").write_text("length: [2, 100]\n")
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x01" * 64)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not parquet")
    (tmp_path / "bad.jsonl").write_text('{"content": "a"}\n{oops\n')
    (tmp_path / "a.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "dir").mkdir()
    for name, text in (("neg.yaml", "length: {min: -1}\n"), ("lang.yaml", "language: {languages: 5}\n"),
                       ("keys.yaml", "1: 2\nfoo: 3\n"), ("list.yaml", "- length\n"),
                       ("tok.yaml", "length: {unit: tokens, tokenizer: /no/such/folder}\n")):
        (tmp_path / name).write_text(text)
    return tmp_path


CLEAN = ["data", "clean", "a.csv", "--rules", "r.yaml", "--text-columns", "content", "--quiet"]
PROFILE = ["data", "profile", "a.csv"]

CASES = [
    # outputs that would replace an input, or go where they cannot
    ([*PROFILE, "--json", "a.csv"], "--json"),
    ([*PROFILE, "--html", "a.csv"], "--html"),
    ([*PROFILE, "--rules", "a.csv"], "--rules"),
    ([*PROFILE, "--json", "out.json", "--html", "dir"], "--html"),
    ([*PROFILE, "--json", "out.json", "--html", "out.json"], "--html"),
    (PROFILE, "--json/--html/--rules"),
    (["data", "profile", "nums.csv", "--json", "out.json", "--rules", "rules.yaml"], "--rules"),
    ([*CLEAN, "--output", "a.csv"], "--output"),
    ([*CLEAN, "--output", "out.csv", "--excluded", "a.csv"], "--excluded"),
    ([*CLEAN, "--output", "out.csv", "--report", "a.csv"], "--report"),
    ([*CLEAN, "--output", "out.csv", "--report", "r.yaml"], "--report"),
    ([*CLEAN, "--output", "out.csv", "--report", "dir"], "--report"),
    ([*CLEAN, "--output", "out.csv", "--report", "out.csv"], "--report"),
    ([*CLEAN, "--output", "out.csv", "--excluded", "out.csv"], "--excluded"),
    ([*CLEAN, "--output", "out.txt"], "--output"),
    ([*CLEAN, "--output", "dir"], "--output"),
    ([*CLEAN, "--output", "/proc/no/such/out.csv"], "--output"),
    # column names that are not in the data
    ([*PROFILE, "--json", "out.json", "--text-columns", "nosuch"], "--text-columns"),
    ([*PROFILE, "--json", "out.json", "--label-column", "nosuch"], "--label-column"),
    ([*PROFILE, "--json", "out.json", "--feature-columns", "content"], "--feature-columns"),
    ([*PROFILE, "--json", "out.json", "--text-columns", ","], "--text-columns"),
    ([*PROFILE, "--json", "out.json", "--label-column", " "], "--label-column"),
    ([*CLEAN[:6], "nosuch", "--output", "out.csv"], "--text-columns"),
    ([*CLEAN[:6], "content,,n", "--output", "out.csv"], "--text-columns"),
    # rules files
    (["data", "clean", "a.csv", "--rules", "bin.yaml", "--text-columns", "content", "--output", "out.csv"], "--rules"),
    (["data", "clean", "a.csv", "--rules", "none.yaml", "--text-columns", "content", "--output", "out.csv"], "--rules"),
    (["data", "clean", "a.csv", "--rules", "a.csv", "--text-columns", "content", "--output", "out.csv"], "--rules"),
    (["data", "clean", "a.csv", "--rules", "neg.yaml", "--text-columns", "content", "--output", "out.csv"], "length.min"),
    (["data", "clean", "a.csv", "--rules", "lang.yaml", "--text-columns", "content", "--output", "out.csv"], "language"),
    (["data", "clean", "a.csv", "--rules", "keys.yaml", "--text-columns", "content", "--output", "out.csv"], "--rules"),
    (["data", "clean", "a.csv", "--rules", "list.yaml", "--text-columns", "content", "--output", "out.csv"], "--rules"),
    (["data", "clean", "a.csv", "--rules", "tok.yaml", "--text-columns", "content", "--output", "out.csv"], "tokenizer"),
    # flags
    ([*CLEAN, "--output", "out.csv", "--chunk-size", "0"], "--chunk-size"),
    # input files: corrupt, empty, binary, unknown suffix, missing
    *[(["data", "clean", name, "--rules", "r.yaml", "--text-columns", "content", "--output", "out.csv"], "input")
      for name in ("bin.csv", "empty.csv", "bad.parquet", "bad.jsonl", "a.xlsx", "none.csv", "dir")],
    *[(["data", "profile", name, "--json", "out.json"], "input")
      for name in ("bin.csv", "empty.csv", "bad.parquet", "bad.jsonl", "a.xlsx", "none.csv")],
]


@pytest.mark.parametrize("argv, flag", CASES, ids=[" ".join(c[0][1:]) for c in CASES])
def test_cli_bad_input_is_one_line_naming_the_flag(argv, flag, folder, capsys):
    refused(argv, capsys, flag, unchanged=folder)  # inputs unchanged, no output (not even a partial one) created


def test_a_missing_text_column_lists_the_real_ones(folder, capsys):
    refused([*PROFILE, "--json", "out.json", "--text-columns", "nosuch"], capsys, all_of=["nosuch", "'content'", "'n'"])


def test_the_report_folder_bug_leaves_no_main_output(folder, capsys):
    """The user's case: --report an existing folder used to raise IsADirectoryError after writing --output."""
    refused([*CLEAN, "--output", "out.csv", "--report", "dir"], capsys, "--report")
    assert not (folder / "out.csv").exists()
    assert _run([*CLEAN, "--output", "out.csv", "--excluded", "drop.jsonl", "--report", "rep.json"]) == 0
    assert {"out.csv", "drop.jsonl", "rep.json"} <= {p.name for p in folder.iterdir()}


API_CASES = [
    (lambda f: DataCleaner("content"), "text_columns"),
    (lambda f: DataCleaner(["content", "content"]), "text_columns"),
    (lambda f: DataCleaner([]), "text_columns"),
    (lambda f: DataCleaner(["content"], chunk_size=0), "chunk_size"),
    (lambda f: DataCleaner(["content"], toxicity_scorer=5), "toxicity_scorer"),
    (lambda f: DataCleaner(["content"], f / "bin.yaml"), "rules"),
    (lambda f: DataCleaner(["content"], str(f / "neg.yaml")), "neg.yaml"),
    (lambda f: DataCleaner(["content"], {"language": {"languages": 5}}), "rules.language"),
    (lambda f: DataCleaner(["content"], {"language": [[1]]}), "rules.language"),
    (lambda f: DataCleaner(["content"], {1: 2, "foo": 3}), "rules"),
    (lambda f: DataCleaner(["content"], {"quality": {"max_symbol_ratio": math.inf}}), "max_symbol_ratio"),
    (lambda f: DataCleaner(["content"], {"quality": {"mean_word_length": [1, math.nan]}}), "mean_word_length"),
    (lambda f: DataCleaner(["content"], {"toxicity": 1.5}), "threshold"),
    (lambda f: DataCleaner(["content"], {"length": {"unit": "tokens", "tokenizer": "/no/such"}}), "tokenizer"),
    (lambda f: DataCleaner(["content"]).process_file(f / "a.csv", f / "a.csv"), "output"),
    (lambda f: DataCleaner(["content"]).process_file(f / "a.csv", f / "out.csv", report=f / "dir"), "report"),
    (lambda f: DataCleaner(["content"]).process_file(f / "a.csv", f / "out.csv", excluded=f / "out.csv"), "excluded"),
    (lambda f: DataCleaner(["content"]).process_file(f / "a.csv", f / "out.csv", report=f / "a.csv"), "report"),
    (lambda f: DataCleaner(["content"]).process_file(f / "bin.csv", f / "out.csv"), "source"),
    (lambda f: DataCleaner(["content"]).process_file(f / "none.csv", f / "out.csv"), "source"),
    (lambda f: DataCleaner(["nosuch"]).process_file(f / "a.csv", f / "out.csv"), "text_columns"),
    (lambda f: DataCleaner(["content"]).process(f / "empty.csv"), "empty.csv"),
    (lambda f: DataProfiler(z=math.nan), "z"),
    (lambda f: DataProfiler(text_columns="content"), "text_columns"),
    (lambda f: DataProfiler(text_columns=[""]), "text_columns"),
    (lambda f: DataProfiler(seed=-1), "seed"),
    (lambda f: DataProfiler(label_column=""), "label_column"),
    (lambda f: DataProfiler(chunk_size=0), "chunk_size"),
    (lambda f: DataProfiler(text_columns=["nosuch"]).profile(f / "a.csv"), "text_columns"),
    (lambda f: DataProfiler(minimal=True).profile(f / "bad.parquet"), "bad.parquet"),
    (lambda f: DataProfiler(minimal=True).profile(f / "a.csv").save_json(f / "dir"), "path"),
    (lambda f: DataProfiler(minimal=True).profile(f / "a.csv").save_html(f / "a.csv"), "path"),
]


@pytest.mark.parametrize("call, argument", API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_python_api_bad_input_names_the_argument(call, argument, folder):
    with leaves_unchanged(folder), pytest.raises(InvalidArgumentError, match=argument):
        call(folder)
