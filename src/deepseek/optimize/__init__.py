"""``deepseek optimize``: hand it a model and an accuracy budget; it searches precision, lowering, float fallbacks
and pruning together, measures every candidate for real (accuracy on held-out data, latency in its own process),
and writes the fastest (or smallest) artifact within the budget, the Pareto front, a report and a replayable recipe.

``deepseek.optimize(model, example_inputs, data=..., target=..., max_accuracy_drop=...)`` is the Python form.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .._core.lazy import lazy_getattr
from .config import OptimizeConfig
from .lm import load_lm, optimize_lm
from .replay import read_recipe, replay  # the function: it shadows its module's name in this package

if TYPE_CHECKING:
    from .result import Candidate, OptimizeResult, pareto_front
    from .search import search_space

# imported on first use: a latency-measuring process (``python -m deepseek.optimize.latency``) timing an ONNX
# artifact must not pay for importing torch, which the search and the compile pipeline need
_LAZY = {"Candidate": "result", "OptimizeResult": "result", "pareto_front": "result", "search_space": "search"}

__all__ = ["Candidate", "OptimizeConfig", "OptimizeResult", "load_lm", "optimize", "optimize_lm", "pareto_front",
           "read_recipe", "replay", "search_space"]


def optimize(model: Any, example_inputs: Any = None, **options: Any) -> OptimizeResult:
    """Search for the fastest artifact of ``model`` within the accuracy budget (see :mod:`deepseek.optimize`)."""
    from .search import optimize as run

    return run(model, example_inputs, **options)


__getattr__ = lazy_getattr(__name__, _LAZY)


class _CallableModule(types.ModuleType):
    """Lets ``deepseek.optimize(...)`` be called while ``deepseek.optimize.replay`` etc. stay importable."""

    def __call__(self, model: Any, example_inputs: Any = None, **options: Any) -> OptimizeResult:
        return optimize(model, example_inputs, **options)


sys.modules[__name__].__class__ = _CallableModule
