"""The language cascade: fastText's lid.176 decides what it is sure of, py3langid the rest."""

from __future__ import annotations

import pytest

from deepseek import assets
from deepseek.data import language

pytest.importorskip("py3langid")
pytest.importorskip("fasttext")

TEXTS = ["Dia duit, conas atá tú inniu?", "ok", "Das ist ein ganz normaler deutscher Satz über das Wetter.",
         "Ceci est une phrase française tout à fait ordinaire.", "lol 123", "hello\nworld, this is on two lines"]


def test_the_cascade_follows_fasttext_when_sure_and_py3langid_otherwise():
    assert language.backend().startswith("fastText")
    texts = TEXTS + list(assets.rotten_tomatoes().texts[:300])
    codes, scores = language.identify(texts)
    fast, slow = language._fasttext(), language._langid()
    asked = 0
    for text, code, score in zip(texts, codes, scores, strict=True):
        (p, label), = fast.predict(text.replace("\n", " ") + "\n", 1, 0.0, "replace")
        if p >= language.CASCADE_BELOW:
            assert (code, score) == (label.removeprefix("__label__"), pytest.approx(p))
        else:
            asked += 1
            expected, expected_score = slow.classify(text)
            assert (code, score) == (expected, pytest.approx(float(expected_score)))
    assert 0 < asked < len(texts) // 4
    assert codes[2:4] == ["de", "fr"] and sum(c == "en" for c in codes[len(TEXTS):]) > 290
    assert {"ga", "en", "zh", "ceb"} <= language.known_languages()


def test_each_model_alone_and_a_bad_choice():
    text = ["Das ist ein ganz normaler deutscher Satz über das Wetter."]
    assert language.identify(text, "fasttext")[0] == ["de"] and language.identify(text, "py3langid")[0] == ["de"]
    from deepseek import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="models"):
        language.identify(text, "nope")
