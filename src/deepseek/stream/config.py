"""StreamConfig: a feature pipeline, a scoring model, a threshold and the label delay, read from ``stream.yaml``.

```yaml
window_size: 3600
features: [transaction_amount_std, login_location_entropy, device_fingerprint_match]   # "handbook" adds the
                             # Handbook's 12 customer and terminal-risk features
fields: {user_id: CUSTOMER_ID, timestamp: TX_DATETIME, amount: TX_AMOUNT}   # optional renames
allowed_lateness: 0
late_policy: update          # update | drop | side
online_learning: true
model: logistic_regression   # logistic_regression | adaptive_random_forest | half_space_trees
threshold: {dynamic: true, base: 0.85, alert_rate: 0.01, window: 5000}
label_column: is_fraud       # optional: the replay's ground truth
label_delay: 604800          # seconds until a label is known (the Handbook's 7 days)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid, require
from .pipeline import LATE_POLICIES, FeaturePipeline
from .risk import RiskEngine, ThresholdPolicy

MODELS = ("logistic_regression", "adaptive_random_forest", "half_space_trees")


@dataclasses.dataclass(frozen=True)
class StreamConfig(BaseConfig):
    """What ``deepseek stream replay`` builds: see the module docstring for the YAML."""

    window_size: float = 3600.0
    features: Sequence[Any] = ("transaction_amount_std", "login_location_entropy", "device_fingerprint_match")
    fields: Mapping[str, str] | None = None
    allowed_lateness: float = 0.0
    late_policy: str = "update"
    online_learning: bool = True
    model: str = "logistic_regression"
    threshold: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"dynamic": True, "base": 0.85})
    label_column: str | None = None
    label_delay: float = 7 * 86400.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.model, "model", MODELS, expected=f"one of {list(MODELS)}")
        check_choice(self.late_policy, "late_policy", LATE_POLICIES, expected=f"one of {list(LATE_POLICIES)}")
        if not isinstance(self.threshold, Mapping):
            raise invalid("threshold", self.threshold, "a mapping such as {dynamic: true, base: 0.85}")
        unknown = sorted(str(k) for k in set(self.threshold) - {f.name for f in dataclasses.fields(ThresholdPolicy)})
        if unknown:
            raise invalid("threshold", unknown, "keys among dynamic, base, alert_rate, window, warmup")
        ThresholdPolicy(**self.threshold)
        if self.label_column is not None and (not isinstance(self.label_column, str) or not self.label_column):
            raise invalid("label_column", self.label_column, "a column name, or null")
        check_number(self.label_delay, "label_delay", minimum=0, expected="seconds >= 0")
        check_int(self.seed, "seed")
        self.pipeline()  # validates window_size, features, fields, lateness

    @classmethod
    def from_yaml(cls, path: str | Path, *, argument: str = "path") -> StreamConfig:
        """Read ``path`` (YAML); errors name ``argument``, the file and the field."""
        from .._core.config import read_yaml
        from .._core.errors import InvalidArgumentError

        data = read_yaml(path, argument=argument, what="a YAML file of stream settings (stream.yaml)", mapping=True)
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            raise invalid(f"{argument} ({path})", bad, f"setting names among {[f.name for f in dataclasses.fields(cls)]}")
        for key, types, expected in (("_type", str, "a string"), ("_version", int, "an integer")):
            if key in data and (isinstance(data[key], bool) or not isinstance(data[key], types)):
                raise invalid(f"{argument} ({path}): field {key!r}", data[key], expected)
        try:
            return cls.from_dict(dict(data))
        except InvalidArgumentError as exc:  # name the file the field is in
            raise InvalidArgumentError(f"{argument} ({path}): {exc}") from None
        except TypeError as exc:  # a value of a type no check expected, e.g. a list where a name goes
            raise invalid(f"{argument} ({path})", str(exc), "settings of the documented types") from None

    def pipeline(self) -> FeaturePipeline:
        from .features import handbook_features

        items = [self.features] if isinstance(self.features, str) else list(self.features)
        features = [f for item in items for f in (handbook_features() if item == "handbook" else [item])]
        return FeaturePipeline(window_size=self.window_size, features=features, fields=self.fields,
                               allowed_lateness=self.allowed_lateness, late_policy=self.late_policy,
                               online_learning=self.online_learning)

    def engine(self) -> RiskEngine:
        """A RiskEngine with this config's model, threshold and a fresh pipeline attached."""
        require("river", "deepseek stream", "river==0.26.1")
        from river import anomaly, forest, linear_model, preprocessing

        if self.model == "logistic_regression":
            model: Any = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        elif self.model == "adaptive_random_forest":
            model = forest.ARFClassifier(n_models=10, seed=self.seed)
        else:
            model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=self.seed)
        engine = RiskEngine(model).attach_pipeline(self.pipeline())
        engine.set_threshold(**dict(self.threshold))
        return engine
