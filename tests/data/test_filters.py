"""The cleaning rules are filter classes run in order (the first one a row fails is its drop reason); a new rule is
a new TextFilter in the cleaner's list."""

import pandas as pd

from deepseek.data import DataCleaner
from deepseek.data.filters import (
    Batch,
    CustomFilter,
    LanguageFilter,
    LengthFilter,
    TextFilter,
    ToxicityFilter,
)


def test_the_rules_become_filters_in_their_order():
    cleaner = DataCleaner(["text"], {"length": (3, 100)}, custom_rules={"digits": lambda s: not any(c.isdigit() for c in s)})
    assert [type(f) for f in cleaner.filters] == [LengthFilter, CustomFilter, LanguageFilter, ToxicityFilter]
    assert cleaner.filters[1].name == "custom:digits"


def test_a_new_filter_is_a_class_in_the_list():
    class Shouting(TextFilter):
        name = "shouting"

        def apply(self, batch: Batch) -> None:
            alive = batch.alive()
            for i, s in zip(alive, batch.texts_at(alive)):
                if s.isupper():
                    batch.reason[i] = self.name

    cleaner = DataCleaner(["text"], {"length": (3, 100)})
    cleaner.filters.insert(1, Shouting())  # after length: a too-short shout is dropped for its length
    rows = pd.DataFrame({"text": ["a quiet sentence here", "THIS IS LOUD", "NO", None]})
    annotated = cleaner.annotate(rows)
    assert annotated["drop_reason"].tolist() == [None, "shouting", "length", "missing"]
    assert cleaner.process(rows)["text"].tolist() == ["a quiet sentence here"]
