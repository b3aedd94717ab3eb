"""Row-level findings for the profiler: anomalous rows (scikit-learn's isolation forest over the numeric columns and
text lengths) and label issues (cleanlab's ``find_label_issues`` on out-of-fold predicted probabilities)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from .._core.checks import check_int
from .._core.errors import invalid

TOP_ROWS = 100  # rows listed in a report, the most suspicious first


def row_features(frame: Any, numeric: Sequence[str], text: Sequence[str]) -> Any:
    """A float64 matrix (rows x features): numeric columns as numbers, text columns as their length in characters;
    anything else (missing, wrong type) is NaN."""
    import numpy as np
    import pandas as pd

    out = np.empty((len(frame), len(numeric) + len(text)), dtype=np.float64)
    for j, name in enumerate(numeric):
        out[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    for j, name in enumerate(text, start=len(numeric)):
        lengths = frame[name].map(lambda v: len(v) if isinstance(v, str) else np.nan)
        out[:, j] = lengths.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


class IsolationScorer:
    """An isolation forest fitted on a uniform sample of rows; :meth:`update` scores every row of a chunk and keeps
    the count of anomalous rows (scikit-learn's ``contamination='auto'`` cut) and the most anomalous ones."""

    def __init__(self, sample: Any, numeric: Sequence[str], text: Sequence[str], seed: int) -> None:
        import numpy as np
        from sklearn.ensemble import IsolationForest

        self.numeric, self.text = list(numeric), list(text)
        x = row_features(sample, self.numeric, self.text)
        self.fill = np.nan_to_num(np.nanmedian(x, axis=0), nan=0.0) if len(x) else np.zeros(x.shape[1])
        self.forest = IsolationForest(n_estimators=100, random_state=seed).fit(self._filled(x))
        self.count = 0
        self.rows = 0
        self.flagged: list[Any] = []  # every anomalous row's index, one array per chunk
        self._worst: list[tuple[float, int]] = []  # a min-heap of (-score, row): the most anomalous TOP_ROWS

    def _filled(self, x: Any) -> Any:
        import numpy as np

        return np.where(np.isnan(x), self.fill, x)

    def update(self, chunk: Any, first_row: int) -> None:
        import numpy as np

        if not len(chunk):
            return
        scores = self.forest.decision_function(self._filled(row_features(chunk, self.numeric, self.text)))
        flagged = np.flatnonzero(scores < 0)
        self.flagged.append(flagged + first_row)
        self.count += len(flagged)
        self.rows += len(chunk)
        for i in flagged[np.argsort(scores[flagged])[:TOP_ROWS]]:
            item = (-float(scores[i]), first_row + int(i))
            if len(self._worst) < TOP_ROWS:
                heapq.heappush(self._worst, item)
            elif item > self._worst[0]:
                heapq.heapreplace(self._worst, item)

    def result(self) -> dict[str, Any]:
        worst = sorted(self._worst, reverse=True)
        return {"method": "isolation forest (scikit-learn, 100 trees, contamination='auto')",
                "features": self.numeric + [f"len({t})" for t in self.text], "count": self.count,
                "share": self.count / self.rows if self.rows else 0.0,
                "rows": [{"row": row, "score": -neg} for neg, row in worst]}

    def all_rows(self) -> list[int]:
        import numpy as np

        return np.concatenate(self.flagged).tolist() if self.flagged else []


def default_label_model(text: bool) -> Any:
    """The CLI's label model: TF-IDF (words and bigrams) + logistic regression for one text column, else
    logistic regression on standardised numbers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if text:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                             LogisticRegression(max_iter=1000))
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def label_issues(frame: Any, label_column: str, *, model: Any = None, pred_probs: Any = None,
                 feature_columns: Sequence[str] | None = None, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Rows whose given label looks wrong (Northcutt et al.'s confident learning, through cleanlab): the
    predicted probabilities are ``pred_probs`` when given, else ``model``'s out-of-fold ``predict_proba`` over
    ``folds`` stratified folds of ``feature_columns`` (one text column is passed as a list of strings, so a
    TF-IDF pipeline fits)."""
    import numpy as np

    if label_column not in frame.columns:
        raise invalid("label_column", label_column, f"a column of the data ({list(frame.columns)})")
    labels_raw = frame[label_column]
    if labels_raw.isna().any():
        raise invalid("label_column", label_column, f"a column without missing labels ({int(labels_raw.isna().sum())} "
                      "missing)")
    classes, labels = np.unique(labels_raw.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise invalid("label_column", label_column, "a column with at least two classes")
    if pred_probs is not None:
        probs = np.asarray(pred_probs, dtype=np.float64)
        if probs.shape != (len(frame), len(classes)):
            raise invalid("pred_probs", f"shape {probs.shape}", f"shape {(len(frame), len(classes))} (rows x classes, "
                          "columns in sorted label order)")
        source = "given pred_probs"
    else:
        if model is None or not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
            raise invalid("model", model, "a scikit-learn classifier with fit and predict_proba (or give pred_probs)")
        features = list(feature_columns) if feature_columns is not None else [
            c for c in frame.columns if c != label_column]
        missing = [c for c in features if c not in frame.columns]
        if missing or not features or label_column in features:
            raise invalid("feature_columns", feature_columns, f"columns of the data other than {label_column!r}")
        smallest = int(np.bincount(labels).min())
        folds = check_int(folds, "folds", minimum=2, maximum=smallest,
                          expected=f"an integer from 2 to the smallest class's size ({smallest})")
        import pandas as pd
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        one = frame[features[0]]
        text = len(features) == 1 and (pd.api.types.is_string_dtype(one.dtype) or one.dtype == object)
        x = one.tolist() if text else frame[features].to_numpy()
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        probs = cross_val_predict(clone(model), x, labels, cv=cv, method="predict_proba")
        source = f"{folds}-fold out-of-fold predict_proba of {type(model).__name__}"
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    self_confidence = probs[np.arange(len(labels)), labels]
    accuracy = float((probs.argmax(1) == labels).mean())
    return {"method": "cleanlab find_label_issues (confident learning), ranked by self-confidence",
            "probabilities": source, "out_of_fold_accuracy": accuracy, "count": len(ranked),
            "share": len(ranked) / len(labels),
            "rows": [{"row": int(i), "given": _plain(classes[labels[i]]), "suggested": _plain(classes[probs[i].argmax()]),
                      "self_confidence": float(self_confidence[i])} for i in ranked[:TOP_ROWS]],
            "all_rows": [int(i) for i in ranked]}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
