"""PeriodicRefit: a batch classifier refit on the latest labels, scored like an online one."""

from __future__ import annotations

import random

import numpy as np
import pytest

from deepseek import InvalidArgumentError
from deepseek.stream import FeaturePipeline, PeriodicRefit, RiskEngine

pytest.importorskip("sklearn")
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def rows(n: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        y = rng.random() < 0.1
        out.append(({"a": rng.gauss(3.0 if y else 0.0, 1.0) * 100, "b": rng.gauss(0, 1) + 7}, y))
    return out


def test_the_folded_logistic_weights_give_scikit_learns_probabilities():
    model = PeriodicRefit(make_pipeline(StandardScaler(), LogisticRegression()), every=500, min_labels=100)
    data = rows(2000, 0)
    for x, y in data[:1000]:
        model.learn_one(x, y)
    assert model.refits == 2 and model._linear is not None
    xs = np.array([[x["a"], x["b"]] for x, _ in data[1000:]])
    want = model.fitted.predict_proba(xs)[:, 1]
    got = np.array([model.predict_proba_one(x)[True] for x, _ in data[1000:]])
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_refits_wait_for_both_classes_and_keep_only_the_window():
    model = PeriodicRefit(LogisticRegression(), every=10, window=50, min_labels=20)
    for i in range(40):
        model.learn_one({"a": float(i)}, False)
    assert model.fitted is None and model.predict_proba_one({"a": 1.0}) == {False: 1.0, True: 0.0}
    model.learn_one({"a": 100.0}, True)
    assert model.refits == 1 and len(model._rows) == 41
    for i in range(100):
        model.learn_one({"a": float(i)}, i % 2 == 0)
    assert len(model._rows) == 50 and model.refits == 11
    forest = PeriodicRefit(RandomForestClassifier(n_estimators=5, random_state=0), every=20, min_labels=20)
    for x, y in rows(200, 1):
        forest.learn_one(x, y)
    assert forest._linear is None and 0.0 <= forest.predict_proba_one({"a": 300.0, "b": 7.0})[True] <= 1.0


def test_risk_engine_learns_through_it_from_delayed_labels():
    data = rows(6000, 2)
    engine = RiskEngine(PeriodicRefit(make_pipeline(StandardScaler(), LogisticRegression()), every=500,
                                      min_labels=500), top_k=2)
    engine.attach_pipeline(FeaturePipeline(features=[{"name": "a", "agg": "value", "field": "a"},
                                                     {"name": "b", "agg": "value", "field": "b"}],
                                           online_learning=True))
    scores, labels = [], []
    for i, (x, y) in enumerate(data):
        d = engine.score({"tx_id": i, "user_id": i % 7, "timestamp": float(i), **x})
        scores.append(d.score)
        labels.append(y)
        if i >= 100:
            engine.feedback(i - 100, data[i - 100][1])
    late = slice(3000, None)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels[late], scores[late]) > 0.95
    assert engine.model.refits >= 5


def test_bad_settings_are_refused():
    with pytest.raises(InvalidArgumentError, match="estimator"):
        PeriodicRefit(object())
    with pytest.raises(InvalidArgumentError, match="every"):
        PeriodicRefit(LogisticRegression(), every=0)
    model = PeriodicRefit(LogisticRegression(), every=1, min_labels=2)
    model.learn_one({"a": 1.0}, True)
    model.learn_one({"a": 0.0}, False)
    with pytest.raises(InvalidArgumentError, match="features"):
        model.predict_proba_one({"b": 1.0})
