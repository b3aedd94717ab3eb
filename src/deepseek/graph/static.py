"""Static graphs: capture once per input signature, optimize, then run the graph; dynamic (eager) on request."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils import _pytree as pytree

from .._core.checks import check_choice, check_int
from .._core.errors import invalid
from .capture import CaptureError, capture
from .executor import PlannedExecutor
from .memory_plan import MemoryPlan, plan_memory
from .passes import PassReport, optimize

BACKENDS = ("planned", "inductor")
_EAGER = contextvars.ContextVar("deepseek_dynamic_graph", default=False)


@contextlib.contextmanager
def dynamic_graph() -> Iterator[None]:
    """Run eagerly inside this block: static graphs call their Python code directly (breakpoints and prints work)."""
    token = _EAGER.set(True)
    try:
        yield
    finally:
        _EAGER.reset(token)


@dataclasses.dataclass(frozen=True)
class GraphReport:
    """One captured signature: what the passes did and its activation memory naive vs planned.

    ``memory`` plans every intermediate (what a static runtime writing in place needs); ``executed`` is the
    arena the "planned" backend really uses (ops with a native ``out=`` kernel; the rest allocate).
    """

    signature: str
    passes: PassReport
    memory: MemoryPlan
    executed: MemoryPlan | None
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "backend": self.backend, "passes": self.passes.to_dict(),
                "memory": self.memory.to_dict(), "executed": self.executed.to_dict() if self.executed else None}


class StaticGraph:
    """A function or module captured into an optimized graph per input signature (shapes, dtypes, devices).

    Runs for inference: outputs carry no autograd history, and tensors the callable reads (weights,
    captured tensors) are frozen at capture — call :meth:`reset` after changing them. Calls with
    keyword arguments, with inputs that require grad while grad mode is on, inside :func:`dynamic_graph`,
    or whose capture failed (a graph break, warned once) run eagerly.
    """

    def __init__(self, fn: Callable[..., Any], backend: str = "planned", max_signatures: int = 8) -> None:
        if not callable(fn):
            raise invalid("fn", type(fn).__name__, "a function or torch.nn.Module")
        check_choice(backend, "backend", BACKENDS, expected=f"one of {BACKENDS}")
        check_int(max_signatures, "max_signatures", minimum=1)
        self.fn = fn
        self.backend = backend
        self.max_signatures = max_signatures
        self._graphs: OrderedDict[Any, tuple[Callable[..., Any] | None, GraphReport | None]] = OrderedDict()
        self._failures: dict[Any, str] = {}
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs or _EAGER.get() or self._needs_autograd(args):
            return self.fn(*args, **kwargs)
        run, _ = self._compiled(args)
        return self.fn(*args) if run is None else run(*args)

    def explain(self, *args: Any) -> GraphReport:
        """Capture (if not yet) for these inputs and report the passes and the memory plan."""
        _, report = self._compiled(args)
        if report is None:
            raise CaptureError(f"{self._failures[_signature(args, self.fn)]} (for {_describe(args)}; it runs eagerly)")
        return report

    @property
    def reports(self) -> list[GraphReport]:
        return [r for _, r in self._graphs.values() if r is not None]

    def reset(self) -> None:
        """Forget every captured graph (after the weights or captured tensors changed)."""
        self._graphs.clear()
        self._failures.clear()

    def _compiled(self, args: tuple[Any, ...]) -> tuple[Callable[..., Any] | None, GraphReport | None]:
        key = _signature(args, self.fn)
        if key in self._graphs:
            self._graphs.move_to_end(key)
            return self._graphs[key]
        try:
            graph = capture(self.fn, args)
        except CaptureError as e:
            warnings.warn(f"{e} — running eagerly for this input signature", stacklevel=3)
            self._failures[key] = str(e)
            self._graphs[key] = (None, None)
            return None, None
        passes = optimize(graph)
        plan = plan_memory(graph)
        executed = None
        if self.backend == "inductor":
            run: Callable[..., Any] = torch.compile(graph, dynamic=False)
        else:
            executed = plan_memory(graph, native_out_only=True)
            run = PlannedExecutor(graph, executed)
        entry = (run, GraphReport(_describe(args), passes, plan, executed, self.backend))
        self._graphs[key] = entry
        if len(self._graphs) > self.max_signatures:
            self._graphs.popitem(last=False)
            warnings.warn(f"{getattr(self, '__name__', type(self.fn).__name__)}: more than {self.max_signatures} input signatures; forgot the oldest "
                          "(vary shapes less, or raise max_signatures)", stacklevel=3)
        return entry

    def _needs_autograd(self, args: tuple[Any, ...]) -> bool:
        if not torch.is_grad_enabled():
            return False
        flat = args if all(type(a) is torch.Tensor for a in args) else pytree.tree_leaves(args)
        return any(isinstance(a, torch.Tensor) and a.requires_grad for a in flat)


def static_graph(fn: Callable[..., Any] | None = None, *, backend: str = "planned",
                 max_signatures: int = 8) -> Any:
    """Decorator (or wrapper for an ``nn.Module``): capture once per input signature, optimize, run as a graph.

    Passes: conv+BN folding, constant folding, matmul+bias fusion, dead-code elimination, and a memory plan
    that places intermediates in one reused arena (``backend="planned"``); ``backend="inductor"`` hands the
    optimized graph to TorchInductor, which also fuses elementwise chains into generated kernels.
    """
    if fn is None:
        return functools.partial(static_graph, backend=backend, max_signatures=max_signatures)
    return StaticGraph(fn, backend=backend, max_signatures=max_signatures)


def _signature(args: tuple[Any, ...], fn: Any) -> Any:
    training = fn.training if isinstance(fn, torch.nn.Module) else None
    if all(type(a) is torch.Tensor for a in args):  # the common case, without pytree's cost
        return tuple((a.shape, a.dtype, a.device) for a in args), training
    leaves, spec = pytree.tree_flatten(args)
    parts = [(x.shape, x.dtype, x.device) if isinstance(x, torch.Tensor) else ("value", x) for x in leaves]
    try:
        hash(tuple(parts))
    except TypeError as e:
        raise invalid("args", "an unhashable non-tensor argument", "tensors, or hashable Python values") from e
    return (str(spec), tuple(parts), training)


def _describe(args: tuple[Any, ...]) -> str:
    return ", ".join(f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')}" if isinstance(x, torch.Tensor) else repr(x)
                     for x in pytree.tree_leaves(args))
