"""The quality heuristics, exact and near-duplicate removal, and personal-data masking."""

from __future__ import annotations

import pandas as pd
import pytest

from deepseek import InvalidArgumentError, assets
from deepseek.data import CleaningRules, DataCleaner
from deepseek.data.pii import mask
from deepseek.data.quality import quality_failure
from deepseek.data.rules import PiiRule, QualityRule

pytest.importorskip("datasketch")


def test_each_quality_check_catches_its_own_failure():
    rule = QualityRule()
    good = "The film moves along at a fine pace and the actors give honest, careful performances throughout."
    assert quality_failure(good, rule) is None
    assert quality_failure("a b c d e f", rule) == "quality:mean_word_length"
    assert quality_failure("great ### film ### ### ### ###", rule) == "quality:symbol_ratio"
    assert quality_failure("1234 5678 9012 film 3456 7890", rule) == "quality:alpha_words"
    lines = "\n".join(["buy cheap pills online now"] * 5 + ["a genuine closing line about the film itself"])
    assert quality_failure(lines, rule) == "quality:duplicate_lines"
    spam = " ".join(["click here"] * 10 + ["for the best deals"])
    assert quality_failure(spam, rule) == "quality:top_bigram"
    assert quality_failure(spam, QualityRule(max_top_bigram=None, max_duplicate_lines=None)) is None


def test_duplicates_go_and_the_first_occurrence_stays():
    reviews = assets.rotten_tomatoes().texts[:200]
    near = reviews[5].replace(".", "!") + " Really."  # a few words changed at the end
    exact = "  " + reviews[7].upper() + "  "  # same text once case and spaces are normalised
    frame = pd.DataFrame({"t": [*reviews, near, exact]})
    only_exact = DataCleaner(["t"], {"dedup": {"exact": True}}).annotate(frame)
    assert only_exact["drop_reason"].iloc[-1] == "duplicate"
    assert only_exact["drop_reason"].iloc[:200].isna().all()
    both = DataCleaner(["t"], {"dedup": {"exact": True, "near": 0.5, "shingle": 2}})
    kept = both.process(frame)
    assert len(kept) <= 200 and kept["t"].iloc[:len(kept)].tolist()[:5] == reviews[:5]
    notes = both.annotate(frame)
    assert notes["drop_reason"].iloc[-2] == "near_duplicate" and notes["drop_reason"].iloc[-1] == "duplicate"
    assert both.report.dropped.get("near_duplicate", 0) >= 1


def test_personal_data_is_masked_in_the_kept_text_only_where_it_is():
    text = ("Write to jane.doe@example.com or call +1 415-555-0132; card 4111 1111 1111 1111, order 1234 5678 9012 "
            "3456, server 192.168.0.12, version 1.2.3")
    masked, found = mask(text, PiiRule())
    assert "<EMAIL>" in masked and "<PHONE>" in masked and "<CARD>" in masked and "<IP>" in masked
    assert "1234 5678 9012 3456" in masked  # fails the Luhn check: not a card number
    assert "version 1.2.3" in masked and found == 4
    frame = pd.DataFrame({"t": [text, "nothing personal here at all"], "n": [1, 2]})
    out = DataCleaner(["t"], {"pii": True}).process(frame)
    assert out["t"].iloc[0] == masked and out["t"].iloc[1] == "nothing personal here at all"
    assert frame["t"].iloc[0] == text  # the input is not modified


def test_the_new_rules_round_trip_and_refuse_bad_values():
    rules = CleaningRules.of({"quality": True, "dedup": {"near": 0.8}, "pii": {"phone": False}})
    assert CleaningRules.of(rules.to_dict()) == rules
    assert CleaningRules.of(rules.to_yaml() and rules.to_dict()).quality.mean_word_length == (3.0, 10.0)
    for bad, match in (({"quality": {"mean_word_length": [9, 3]}}, "mean_word_length"),
                       ({"dedup": {"near": 1.5}}, "near"), ({"pii": {"ssn": True}}, "ssn"),
                       ({"quality": {"min_alpha_words": 2}}, "min_alpha_words")):
        with pytest.raises(InvalidArgumentError, match=match):
            CleaningRules.of(bad)


def test_length_in_tokens_counts_the_tokenizers_tokens_and_custom_rules_drop_with_their_name():
    transformers = pytest.importorskip("transformers")
    folder = str(assets.minilm_path())
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    texts = assets.rotten_tomatoes().texts[:60]
    counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    low, high = sorted(counts)[15], sorted(counts)[45]
    frame = pd.DataFrame({"t": texts})
    cleaner = DataCleaner(["t"], {"length": {"min": low, "max": high, "unit": "tokens", "tokenizer": folder}},
                          custom_rules={"no_digits": lambda s: not any(c.isdigit() for c in s)})
    notes = cleaner.annotate(frame)
    assert notes["length"].tolist() == counts
    for c, s, reason in zip(counts, texts, notes["drop_reason"], strict=True):
        if not low <= c <= high:
            assert reason == "length"
        elif any(ch.isdigit() for ch in s):
            assert reason == "custom:no_digits"
        else:
            assert pd.isna(reason)
    with pytest.raises(InvalidArgumentError, match="tokenizer"):
        CleaningRules.of({"length": {"min": 1, "unit": "tokens"}})
    with pytest.raises(InvalidArgumentError, match="custom_rules"):
        DataCleaner(["t"], {}, custom_rules={"bad": lambda s: "yes"}).process(frame)


def test_numpy_numbers_are_stored_as_plain_numbers_and_written_back():
    import numpy as np
    import yaml

    rules = CleaningRules.of({"toxicity": {"threshold": np.float32(0.25)}, "dedup": {"near": np.float64(0.8),
                              "num_perm": np.int64(64)}, "quality": {"max_top_bigram": np.float32(0.5)},
                              "length": {"min": np.int32(3)}})
    assert type(rules.toxicity.threshold) is float and type(rules.dedup.num_perm) is int
    assert CleaningRules.of(yaml.safe_load(rules.to_yaml())) == rules
    with pytest.raises(InvalidArgumentError, match=r"^rules: got 'version: 1.*File name too long"):
        CleaningRules.of(rules.to_yaml() * 40)  # YAML text where a file's path goes
