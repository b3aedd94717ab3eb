"""Search spaces from YAML: each parameter becomes one Optuna ``suggest_*`` call.

Types (``type:``, or W&B's ``distribution:``): ``log_uniform`` (``min``/``max`` are the values themselves, both
> 0), ``uniform``, ``int_uniform`` (``step``, ``log``), ``quniform`` (``q``: the grid step), ``choice``
(``options``). Optuna's ``low``/``high`` spell ``min``/``max``; W&B's and Ray's ``values`` spell ``options``;
W&B's ``log_uniform_values`` and Ray's ``loguniform`` mean our ``log_uniform``, W&B's ``q_uniform`` our
``quniform``, Ray's ``randint`` our ``int_uniform``.

Conditional parameters: a ``choice`` whose ``options`` is a mapping from each option to the parameters that exist
only when it is chosen::

    optimizer:
      type: choice
      options:
        sgd: {momentum: {type: uniform, min: 0.0, max: 0.99}}
        adamw: {beta2: {type: uniform, min: 0.9, max: 0.999}}

A trial's parameters are flat (``{"optimizer": "sgd", "momentum": 0.9}``); in the study, a conditional
parameter is named after its branch (``optimizer=sgd/momentum``) so two branches may each define their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .._core.checks import check_int, check_number
from .._core.errors import invalid

TYPES = ("log_uniform", "uniform", "int_uniform", "quniform", "choice")
_TYPE_ALIASES = {"log_uniform_values": "log_uniform", "loguniform": "log_uniform", "q_uniform": "quniform",
                 "randint": "int_uniform", "int": "int_uniform", "categorical": "choice", "float": "uniform"}
_KEYS = {"type", "distribution", "min", "max", "low", "high", "options", "values", "q", "step", "log"}


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its kind and bounds or options; ``branches`` (choice only) holds the parameters that exist
    only when that option is chosen; ``prefix`` names the branch it lives in (empty at the top level)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    options: tuple[Any, ...] = ()
    branches: tuple[tuple[Any, tuple[Param, ...]], ...] = ()
    prefix: str = ""

    @property
    def key(self) -> str:
        """The parameter's name in the Optuna study."""
        return f"{self.prefix}{self.name}"

    def suggest(self, trial: Any, out: dict[str, Any]) -> None:
        """Draw this parameter (and the active branch's) from ``trial`` into ``out``."""
        if self.kind == "choice":
            value = trial.suggest_categorical(self.key, list(self.options))
            out[self.name] = value
            for option, params in self.branches:
                if option == value:
                    for p in params:
                        p.suggest(trial, out)
        elif self.kind == "int_uniform":
            out[self.name] = trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1),
                                               log=self.log)
        else:
            step = self.step if self.kind == "quniform" else None
            out[self.name] = trial.suggest_float(self.key, self.low, self.high, step=step,
                                                 log=self.kind == "log_uniform")

    def grid(self) -> list[Any]:
        """Every value a grid search tries (choice, int_uniform, quniform); a clear error for continuous ones."""
        if self.branches and any(params for _, params in self.branches):
            raise invalid(f"search_space.{self.name}", "conditional options", "no conditional parameters with "
                          "sampler grid (its space is a fixed product)")
        if self.kind == "choice":
            return list(self.options)
        if self.kind == "int_uniform" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "quniform":
            n = math.floor((self.high - self.low) / self.step + 1e-9)
            return [self.low + i * self.step for i in range(n + 1)]
        raise invalid(f"search_space.{self.name}", self.kind, "choice, int_uniform or quniform with sampler grid "
                      "(a continuous range has no grid)")

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (our own spelling): ``parse_space({name: p.to_dict()})`` gives ``p`` back."""
        if self.kind == "choice":
            if self.branches and any(params for _, params in self.branches):
                return {"type": "choice", "options": {o: {p.name: p.to_dict() for p in ps} for o, ps in self.branches}}
            return {"type": "choice", "options": list(self.options)}
        out: dict[str, Any] = {"type": self.kind, "min": self.low, "max": self.high}
        if self.kind == "quniform":
            out["q"] = self.step
        if self.kind == "int_uniform":
            out.update({"min": int(self.low), "max": int(self.high)})
            if self.step not in (None, 1):
                out["step"] = int(self.step)
            if self.log:
                out["log"] = True
        return out


def parse_space(space: Any, *, where: str = "search_space", prefix: str = "") -> tuple[Param, ...]:
    """The parameters of a ``search_space`` mapping, validated: each error names the parameter's path."""
    if not isinstance(space, Mapping) or not space:
        raise invalid(where, space, "a mapping of parameter names to {type: ..., ...}")
    return tuple(_param(str(name), spec, f"{where}.{name}", prefix) for name, spec in space.items())


def _param(name: str, spec: Any, where: str, prefix: str) -> Param:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):  # a bare list is a choice, as in Ray's grid_search / W&B's values
            spec = {"type": "choice", "options": spec}
        else:
            raise invalid(where, spec, "a mapping such as {type: uniform, min: 0.0, max: 0.5}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise invalid(where, sorted(str(k) for k in unknown), f"only keys {sorted(_KEYS)}")
    raw_type = spec.get("type", spec.get("distribution"))
    if raw_type is None and ("options" in spec or "values" in spec):
        raw_type = "choice"
    kind = _TYPE_ALIASES.get(str(raw_type), raw_type)
    if kind not in TYPES:
        raise invalid(f"{where}.type", raw_type, f"one of {list(TYPES)}")
    if kind == "choice":
        return _choice(name, spec, where, prefix)
    low, high = _bound(spec, "min", "low", where), _bound(spec, "max", "high", where)
    if not low < high:
        raise invalid(where, {"min": low, "max": high}, "min < max")
    if kind == "log_uniform" and low <= 0:
        hint = ("; W&B's log_uniform takes exponents (e^min..e^max): write log_uniform with the values, e.g. "
                "min: 1e-5, max: 1e-3" if raw_type in ("log_uniform",) else "")
        raise invalid(f"{where}.min", low, f"a value > 0 for log_uniform (the bounds are the values){hint}")
    if kind == "int_uniform":
        step = spec.get("step", spec.get("q", 1))
        if not (float(low).is_integer() and float(high).is_integer()):
            raise invalid(where, {"min": low, "max": high}, "integer bounds for int_uniform")
        step = check_int(step, f"{where}.step", minimum=1)
        log = spec.get("log", False)
        if not isinstance(log, bool) or (log and low < 1):
            raise invalid(f"{where}.log", log, "true or false (log needs min >= 1)")
        if log and step != 1:
            raise invalid(f"{where}.step", step, "1 with log: true")
        return Param(name, kind, low, high, step=step, log=log, prefix=prefix)
    if kind == "quniform":
        q = spec.get("q", spec.get("step"))
        check_number(q, f"{where}.q", above=0, maximum=high - low,
                     expected=f"a step > 0 and <= max - min ({high - low:g})")
        # Optuna needs (high - low) to be a multiple of the step: the top of the grid is the last multiple
        high = low + math.floor((high - low) / q + 1e-9) * q
        return Param(name, kind, low, high, step=float(q), prefix=prefix)
    if spec.get("log"):
        kind = "log_uniform"
        if low <= 0:
            raise invalid(f"{where}.min", low, "a value > 0 with log: true")
    return Param(name, kind, low, high, prefix=prefix)


def _choice(name: str, spec: Mapping[str, Any], where: str, prefix: str) -> Param:
    options = spec.get("options", spec.get("values"))
    if isinstance(options, Mapping):  # conditional: option -> its own parameters
        if not options:
            raise invalid(f"{where}.options", options, "at least one option")
        branches = []
        for option, sub in options.items():
            inner = f"{prefix}{name}={option}/"
            params = () if sub in (None, {}) else parse_space(sub, where=f"{where}.options.{option}", prefix=inner)
            branches.append((option, params))
        return Param(name, "choice", options=tuple(options), branches=tuple(branches), prefix=prefix)
    if not isinstance(options, (list, tuple)) or not options:
        raise invalid(f"{where}.options", options, "a non-empty list of values (or a mapping of conditional options)")
    for value in options:
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise invalid(f"{where}.options", value, "numbers, strings, booleans or null (Optuna stores them)")
    if len(set(map(repr, options))) != len(options):
        raise invalid(f"{where}.options", list(options), "distinct values")
    return Param(name, "choice", options=tuple(options), prefix=prefix)


def _bound(spec: Mapping[str, Any], ours: str, optuna: str, where: str) -> float:
    value = spec.get(ours, spec.get(optuna))
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    return check_number(value, f"{where}.{ours}",
                        expected=f"a finite number ({ours}, or {optuna} as Optuna spells it)")


def suggest(params: tuple[Param, ...], trial: Any) -> dict[str, Any]:
    """One trial's parameters, flat."""
    out: dict[str, Any] = {}
    for p in params:
        p.suggest(trial, out)
    return out


def grid_space(params: tuple[Param, ...]) -> dict[str, list[Any]]:
    """The Optuna ``GridSampler`` search space."""
    return {p.key: p.grid() for p in params}
