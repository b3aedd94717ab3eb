"""TuneConfig: what a study searches and how, read from ``hyperparameter_config.yaml``.

```yaml
search_space:
  learning_rate: {type: log_uniform, min: 1.0e-5, max: 1.0e-3}
  batch_size: {type: choice, options: [32, 64, 128]}
  dropout: {type: uniform, min: 0.0, max: 0.5}
metric: accuracy
direction: maximize
n_trials: 40
timeout: 3600        # seconds, optional
seed: 0
sampler: tpe         # tpe (multivariate) | gp | cmaes | random | grid
pruner: median       # median | successive_halving | hyperband | none
```
W&B's ``metric: {name: accuracy, goal: maximize}``, ``method: bayes|random|grid`` and ``run_cap`` are read too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid
from .space import Param, parse_space

SAMPLERS = ("tpe", "gp", "cmaes", "random", "grid")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
DIRECTIONS = ("minimize", "maximize")
_WANDB_METHODS = {"bayes": "tpe", "random": "random", "grid": "grid"}
_FIELDS = {"search_space", "parameters", "metric", "direction", "n_trials", "run_cap", "timeout", "seed", "sampler",
           "method", "pruner", "study_name", "storage"}


@dataclasses.dataclass(frozen=True)
class TuneConfig(BaseConfig):
    """A study's search space, objective metric and direction, budget (``n_trials`` and/or ``timeout`` seconds),
    sampler, pruner and seed; ``storage`` (a journal file path or a database URL) and ``study_name`` may also be
    given on the command line."""

    search_space: Mapping[str, Any]
    metric: str = "metric"
    direction: str = "minimize"
    n_trials: int | None = 20
    timeout: float | None = None
    seed: int | None = 0
    sampler: str = "tpe"
    pruner: str = "none"
    study_name: str = "deepseek-tune"
    storage: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_params", parse_space(self.search_space))
        if not isinstance(self.metric, str) or not self.metric:
            raise invalid("metric", self.metric, "the name of the metric the objective returns or prints")
        check_choice(self.direction, "direction", DIRECTIONS, expected=f"one of {DIRECTIONS}")
        check_int(self.n_trials, "n_trials", minimum=1, optional=True,
                  expected="an integer >= 1 (or null with a timeout)")
        check_number(self.timeout, "timeout", above=0, optional=True, expected="seconds > 0 (or null)")
        if self.n_trials is None and self.timeout is None:
            raise invalid("n_trials", None, "a number of trials, a timeout, or both")
        check_int(self.seed, "seed", optional=True, expected="an integer (or null for a random seed)")
        check_choice(self.sampler, "sampler", SAMPLERS, expected=f"one of {SAMPLERS}")
        check_choice(self.pruner, "pruner", PRUNERS, expected=f"one of {PRUNERS}")
        if not isinstance(self.study_name, str) or not self.study_name:
            raise invalid("study_name", self.study_name, "a non-empty name")
        if self.storage is not None and (not isinstance(self.storage, str) or not self.storage.strip()):
            raise invalid("storage", self.storage, "a journal file path or a database URL (or null: in memory)")
        if self.sampler == "grid":
            from .space import grid_space

            grid_space(self.params)  # refuses continuous or conditional parameters now, not at the first trial

    @property
    def params(self) -> tuple[Param, ...]:
        return self._params  # type: ignore[attr-defined]

    @classmethod
    def parse(cls, data: Any) -> TuneConfig:
        """A config from a dict (the YAML's content), accepting W&B's spellings of metric, method and budget."""
        if isinstance(data, TuneConfig):
            return data
        if not isinstance(data, Mapping):
            raise invalid("config", type(data).__name__, "a mapping with a search_space")
        unknown = set(data) - _FIELDS
        if unknown:
            raise invalid("config", sorted(str(k) for k in unknown), f"only keys {sorted(_FIELDS)}")
        fields = dict(data)
        if "parameters" in fields:  # W&B sweeps call the space `parameters`
            if "search_space" in fields:
                raise invalid("parameters", "both search_space and parameters", "one of them")
            fields["search_space"] = fields.pop("parameters")
        if "search_space" not in fields:
            raise invalid("search_space", None, "a mapping of parameter names to {type: ..., ...}")
        metric = fields.get("metric")
        if isinstance(metric, Mapping):  # W&B: {name: accuracy, goal: maximize}
            extra = sorted(str(k) for k in set(metric) - {"name", "goal"})
            if extra:
                raise invalid("metric", extra, "only keys name and goal (W&B's form)")
            if "goal" in metric and "direction" in fields:
                raise invalid("metric.goal", metric["goal"], "either metric.goal or direction, not both")
            fields["metric"] = metric.get("name", "metric")
            if "goal" in metric:
                fields["direction"] = metric["goal"]
        if "method" in fields:
            method = fields.pop("method")
            check_choice(method, "method", _WANDB_METHODS,
                         expected=f"one of {sorted(_WANDB_METHODS)} (or sampler: {list(SAMPLERS)})")
            fields.setdefault("sampler", _WANDB_METHODS[method])
        if "run_cap" in fields:
            fields.setdefault("n_trials", fields.pop("run_cap"))
        if fields.get("pruner") is None:
            fields["pruner"] = "none"
        return cls(**fields)

    @classmethod
    def from_yaml(cls, path: str | Path, *, argument: str = "path") -> TuneConfig:
        """Read ``path`` (YAML); errors name ``argument``, the file and the field."""
        from .._core.config import read_yaml
        from .._core.errors import InvalidArgumentError

        data = read_yaml(path, argument=argument, what="a YAML file with a search_space", mapping=True)
        try:
            return cls.parse(data)
        except InvalidArgumentError as exc:  # name the file the field is in
            raise InvalidArgumentError(f"{argument} ({path}): {exc}") from None
        except TypeError as exc:  # a value of a type no check expected
            raise invalid(f"{argument} ({path})", str(exc), "settings of the documented types") from None

    def replace(self, **changes: Any) -> TuneConfig:
        """A copy with ``changes`` (command-line overrides), validated again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
