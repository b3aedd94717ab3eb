"""Structured channel pruning: remove whole channels so the model is really smaller and faster.

Built on Torch-Pruning's dependency graph (traced once: residual adds, concatenation, depthwise/grouped
convs, BatchNorm/LayerNorm and flatten → Linear heads move together). We add what it leaves to the user:
the output layers are found and protected automatically, the result is checked to still run with the same
output shapes, progressive pruning calls back for fine-tuning between steps, and the groups removed are
recorded so ``print(result)`` explains what moved together. Attention loses the same offsets in every head
(heads stay heads): Hugging Face transformers (BERT, ViT, ...) keep their hidden size while each head's
width and the FFN width shrink; torchvision's VisionTransformer (``nn.MultiheadAttention``) shrinks its
residual stream too. Size attributes (heads' size, ``hidden_dim``) are updated to match.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid, require
from .._core.select import check_matched, check_patterns, matches
from .._core.tensors import as_input_tuple, flatten_outputs, to_torch

IMPORTANCES = ("l1", "l2", "taylor", "bn_scale", "random")


@dataclasses.dataclass(frozen=True)
class ChannelPruningConfig(BaseConfig):
    """``ratio``: fraction of channels removed from every prunable group (or overall with
    ``global_ranking``); ``importance``: how channels are ranked (``l1``/``l2`` weight norms of the whole
    coupled group, ``taylor`` |w·grad| — needs gradients, ``bn_scale`` |γ| of the BatchNorms, ``random``);
    ``steps``: prune progressively in that many equal steps; ``round_to``: keep channel counts multiples of
    8/16 (what fast kernels like); ``ignore``: layers never pruned (names, ``re:`` regexes, class names) —
    the layers producing the model's outputs are always kept whole."""

    ratio: float = 0.5
    importance: str = "l1"
    steps: int = 1
    global_ranking: bool = False
    round_to: int | None = None
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_number(self.ratio, "ratio", minimum=0, below=1, expected="a fraction of channels in [0, 1)")
        check_choice(self.importance, "importance", IMPORTANCES, expected=f"one of {IMPORTANCES}")
        check_int(self.steps, "steps", minimum=1, expected="a positive integer")
        check_flag(self.global_ranking, "global_ranking")
        check_int(self.round_to, "round_to", minimum=1, optional=True,
                  expected="None or a positive integer such as 8 or 16")
        object.__setattr__(self, "ignore", check_patterns(self.ignore, argument="ignore"))


@dataclasses.dataclass
class ChannelPruningResult:
    """The pruned model (changed in place) and what it cost: parameters and MACs before/after, and the
    coupled groups removed at each step (layer names and how many channels). ``protected``: the layers kept
    whole — those producing the outputs, and ``unmapped``, the roots of groups whose channels the dependency
    graph maps inconsistently (e.g. Swin V2's relative-position MLP), which are left as they are."""

    model: torch.nn.Module
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    protected: list[str]
    groups: list[list[str]]
    unmapped: list[str] = dataclasses.field(default_factory=list)

    @property
    def param_ratio(self) -> float:
        return self.params_after / self.params_before

    @property
    def mac_ratio(self) -> float:
        return self.macs_after / self.macs_before

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "model"} | {
            "param_ratio": self.param_ratio, "mac_ratio": self.mac_ratio}

    def __str__(self) -> str:
        head = (f"pruned {type(self.model).__name__}: params {self.params_before:,} → {self.params_after:,} "
                f"({self.param_ratio:.1%}), MACs {self.macs_before:,} → {self.macs_after:,} ({self.mac_ratio:.1%}); "
                f"kept whole: {', '.join(self.protected) or '—'}")
        if self.unmapped:
            head += f" (of them, {len(self.unmapped)} whose channels the dependency graph cannot map)"
        lines = [head, f"{len(self.groups)} coupled groups pruned, e.g.:"]
        lines += [f"  {g[0]}" + "".join(f"\n      {m}" for m in g[1:]) for g in self.groups[:3]]
        return "\n".join(lines)


def _tp() -> Any:
    return require("torch_pruning", "structured pruning", "torch-pruning==1.6.1")


def _importance(name: str) -> Any:
    imp = _tp().importance
    return {"l1": lambda: imp.GroupMagnitudeImportance(p=1), "l2": lambda: imp.GroupMagnitudeImportance(p=2),
            "taylor": imp.GroupTaylorImportance, "bn_scale": imp.BNScaleImportance, "random": imp.RandomImportance}[name]()


def output_layers(model: torch.nn.Module, example_inputs: tuple[Any, ...]) -> list[str]:
    """Conv/Linear layers whose result is (a view of) one of the model's outputs. :func:`prune_channels` keeps
    these whole and also every layer reaching an output through other operations (pooling, flatten, ...):
    ``result.protected`` lists them all."""
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    example_inputs = tuple(to_torch(x) for x in as_input_tuple(example_inputs, "example_inputs"))
    # the tensors themselves are held until the comparison: a freed intermediate's memory can be reused by
    # the final output, and a bare pointer would then name an inner layer as an output layer
    produced: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
            def hook(mod: Any, args: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    produced[name] = out
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            outs = flatten_outputs(model(*example_inputs))
    finally:
        for h in hooks:
            h.remove()
    storages = {t.untyped_storage().data_ptr() for t in outs if isinstance(t, torch.Tensor)}
    return [name for name, out in produced.items() if out.untyped_storage().data_ptr() in storages]


def _attention_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Hugging Face self-attention modules (BERT, RoBERTa, ViT, DeiT, ...): ``num_attention_heads`` plus
    ``query``/``key``/``value`` Linear children."""
    return [m for m in model.modules() if hasattr(m, "num_attention_heads")
            and all(isinstance(getattr(m, n, None), torch.nn.Linear) for n in ("query", "key", "value"))]


def _transformer_ignores(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Layers writing into a Hugging Face transformer's residual stream (``*.output.dense``) and its pooler:
    the hidden size stays, heads' width and the FFN width shrink."""
    return [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
            and (n.endswith("output.dense") or ".pooler." in f".{n}.")]


def _sync_sizes(model: torch.nn.Module, blocks: list[torch.nn.Module]) -> None:
    """Models that keep their sizes in attributes get them updated to the pruned layers: Hugging Face
    attention (heads, head size) and torchvision's VisionTransformer (``hidden_dim``, read by its patch
    embedding's reshape)."""
    for m in blocks:
        m.attention_head_size = m.query.out_features // m.num_attention_heads
        if hasattr(m, "all_head_size"):
            m.all_head_size = m.query.out_features
    for m in model.modules():
        if isinstance(getattr(m, "hidden_dim", None), int) and isinstance(getattr(m, "conv_proj", None), torch.nn.Conv2d):
            m.hidden_dim = m.conv_proj.out_channels


def prune_channels(model: torch.nn.Module, ratio: float | None = None, example_inputs: Any = None,
                   config: ChannelPruningConfig | None = None, *,
                   finetune: Callable[[torch.nn.Module, int], None] | None = None,
                   gradients: Callable[[torch.nn.Module], None] | None = None, inplace: bool = False,
                   **kwargs: Any) -> ChannelPruningResult:
    """Remove ``ratio`` of the channels of ``model``, coupled layers together; ``result.model`` is the pruned
    model. The input model is left untouched unless ``inplace=True`` (saves memory for big models; a failed
    prune then leaves it half-pruned — the error says so).

    ``example_inputs`` trace the dependency graph once. ``finetune(model, step)`` runs after every progressive
    step (e.g. an epoch of fine-tuning at a tenth of the learning rate). ``gradients(model)`` must run a
    backward pass for ``importance="taylor"``. Pass a :class:`ChannelPruningConfig` or its fields as keywords.
    Every layer whose output channels reach one of the model's outputs (through pooling, flattening,
    concatenation, residual adds, ...) is kept whole, so the outputs keep their shapes.
    """
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    if ratio is not None:
        kwargs["ratio"] = ratio
    if config is None:
        config = ChannelPruningConfig.from_dict(kwargs)  # unknown keywords are named, not a TypeError
    elif not isinstance(config, ChannelPruningConfig):
        raise invalid("config", type(config).__name__, "None or a ChannelPruningConfig")
    elif kwargs:
        raise invalid("kwargs", sorted(kwargs), "either a config or keyword fields (ratio included), not both")
    if example_inputs is None:
        raise invalid("example_inputs", None, "sample inputs to trace the model's dependency graph")
    examples = tuple(to_torch(x) for x in as_input_tuple(example_inputs, "example_inputs"))
    for argument, callback in (("finetune", finetune), ("gradients", gradients)):
        if callback is not None and not callable(callback):
            raise invalid(argument, type(callback).__name__, "None or a callable")
    check_flag(inplace, "inplace")
    if not any(isinstance(m, _ROOTS) for m in model.modules()):
        raise invalid("model", type(model).__name__, "a model with Conv/Linear modules to prune (a loaded .pt2 is a flat "
                                                     "graph of operators: prune the nn.Module, then export)")
    if config.importance == "taylor" and gradients is None:
        raise invalid("gradients", None, "a callable running loss.backward() on real data (importance='taylor')")
    check_matched(model.named_modules(), config.ignore, argument="ignore")
    tp = _tp()
    if not inplace:
        try:
            model = copy.deepcopy(model)
        except Exception as e:
            raise invalid("model", type(model).__name__, f"a model copy.deepcopy can copy, or pass inplace=True "
                                                         f"({type(e).__name__}: {str(e)[:200]})") from e
    model.eval()
    shapes = _output_shapes(model, examples)
    shuffles = _channel_shuffles(model, examples)
    if shuffles:  # a permutation of channels: no dependency graph can say which consumer channel a pruned one was
        where, channels, groups = shuffles[0]
        raise invalid("model", type(model).__name__, f"channels the dependency graph can follow (layer {where!r} "
                      f"shuffles its {channels} channels between {groups} groups, a permutation Torch-Pruning cannot "
                      f"map pruned channels through; {len(shuffles)} such layer(s); your model is unchanged)")
    names = dict(model.named_modules())
    ignored = [m for n, m in names.items() if n and matches(n, m, config.ignore)]
    blocks = _attention_blocks(model)
    # Attention: remove the same offsets in every head, so each head stays a head (a plain ranking would mix
    # dims of different heads). Hugging Face q/k/v Linears shrink their head width; torch's
    # MultiheadAttention's embedding dim is the residual stream's, which shrinks with it.
    heads = {lin: m.num_attention_heads for m in blocks for lin in (m.query, m.key, m.value)}
    heads |= {m: m.num_heads for m in model.modules() if isinstance(m, torch.nn.MultiheadAttention)}
    if blocks:
        ignored += _transformer_ignores(model)
    # other attention modules reshaping by a head size kept in an attribute (torchvision's MaxViT): whole
    ignored += [m for m in names.values() if isinstance(getattr(m, "head_dim", None), int)
                and not isinstance(m, torch.nn.MultiheadAttention)
                and any(isinstance(c, torch.nn.Linear) for c in m.children())]
    with _graph_compat(tp), warnings.catch_warnings():
        # parameters outside Conv/Linear (ViT's class token, position embedding) lose channels on their last
        # dim, right for them; the shape check after every step catches a model where it is not. Shape
        # inference giving up on a deep chain leaves that mapping alone: not the user's to act on.
        warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
        warnings.filterwarnings("ignore", message="Maximum recursive depth reached")
        return _prune(tp, model, examples, config, shapes, ignored, blocks, heads, finetune, gradients, inplace)


def _prune(tp: Any, model: torch.nn.Module, examples: tuple[Any, ...], config: ChannelPruningConfig,
           shapes: list[tuple[int, ...]], ignored: list[torch.nn.Module], blocks: list[torch.nn.Module],
           heads: dict[torch.nn.Module, int], finetune: Callable[[torch.nn.Module, int], None] | None,
           gradients: Callable[[torch.nn.Module], None] | None, inplace: bool) -> ChannelPruningResult:
    names = dict(model.named_modules())
    try:
        with torch.enable_grad():
            macs_before, params_before = tp.utils.count_ops_and_params(model, examples)
            kept_whole, unmapped = _kept_whole(tp, model, examples, ignored)
            pruner = tp.pruner.MetaPruner(
                model, examples, importance=_importance(config.importance), global_pruning=config.global_ranking,
                pruning_ratio=config.ratio, iterative_steps=config.steps, ignored_layers=ignored + kept_whole + unmapped,
                round_to=config.round_to, out_channel_groups=heads, output_transform=_graph_outputs)
    except Exception as e:  # tracing failed: name the model and the reason
        raise invalid("model", type(model).__name__, f"a model Torch-Pruning can trace ({type(e).__name__}: {str(e)[:300]})") from e
    module_names = {m: n for n, m in names.items()}
    protected = [module_names[m] for m in kept_whole + unmapped]
    groups: list[list[str]] = []
    for step in range(config.steps):
        if gradients is not None:
            model.zero_grad()
            gradients(model)
        steps = pruner.step(interactive=True)
        while True:
            root = "?"
            try:  # ranking a group (in the generator) or pruning it can fail on a structure the graph mis-handles
                group = next(steps, None)
                if group is None:
                    break
                root = _node_name(group[0].dep.target, module_names)
                groups.append([f"{_node_name(dep.target, module_names)} ({getattr(dep.handler, '__name__', dep.handler)}): "
                               f"{len(idxs)} channels" for dep, idxs in group])
                group.prune()
            except Exception as e:  # name the layer to keep whole
                root = _failing_root(tp, e, module_names) or root
                raise invalid("model", type(model).__name__, f"a structure the dependency graph handles (layer {root!r} "
                              f"cannot be pruned: {type(e).__name__}: {str(e)[:200]}; pass ignore=[{root!r}] to keep it "
                              f"whole; {_state(inplace)})") from e
        _sync_sizes(model, blocks)
        model.zero_grad()
        _check(model, examples, shapes, inplace)
        if finetune is not None:
            finetune(model, step)
            model.eval()
    macs_after, params_after = tp.utils.count_ops_and_params(model, examples)
    return ChannelPruningResult(model, int(params_before), int(params_after), int(macs_before), int(macs_after), protected,
                                groups, [module_names[m] for m in unmapped])


def _failing_root(tp: Any, error: BaseException, module_names: dict[Any, str]) -> str | None:
    """The root layer of the group Torch-Pruning was ranking or pruning when ``error`` was raised."""
    tb = error.__traceback__
    found = None
    while tb is not None:
        group = tb.tb_frame.f_locals.get("group")
        if isinstance(group, tp.dependency.Group) and len(group.items):
            found = _node_name(group[0].dep.target, module_names)
        tb = tb.tb_next
    return found


_ROOTS = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.LSTM)
_COMPAT_LOCK = threading.Lock()
_compat_users = 0
_ORIGINALS: dict[str, Any] = {}


class _ViewSizes:
    """A view's ``grad_fn`` that also answers to the name Torch-Pruning 1.6.1 reads its input shape under."""

    def __init__(self, grad_fn: Any, sizes: tuple[int, ...]) -> None:
        self._grad_fn, self._saved_self_sizes = grad_fn, sizes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grad_fn, name)


@contextlib.contextmanager
def _graph_compat(tp: Any) -> Iterator[None]:
    """Two fixes to Torch-Pruning 1.6.1's index mappings, in place while pruning (restored when the last
    pruning ends; nothing else changes):

    * it reads a view's input shape from ``grad_fn._saved_self_sizes``, which PyTorch 2 names
      ``_saved_self_sym_sizes``: without it every reshape of a 4-D tensor (Swin's and MaxViT's windows) is
      taken for a flatten, and the mappings it builds multiply until memory runs out. Its reshape mapping
      sees the shape under the old name too;
    * a concatenation with a branch whose width it cannot infer (deep Swin stages) fails on ``None`` in a sum:
      the concatenation is left unmapped instead, and recorded so the groups through it are kept whole."""
    global _compat_users
    module = tp.dependency.index_mapping
    with _COMPAT_LOCK:
        if _compat_users == 0:
            reshape, concat = module.update_reshape_index_mapping, module.update_concat_index_mapping

            def update_reshape(graph: Any, node: Any) -> Any:
                grad_fn = node.grad_fn
                sizes = getattr(grad_fn, "_saved_self_sym_sizes", None)
                if sizes is None or hasattr(grad_fn, "_saved_self_sizes"):
                    return reshape(graph, node)
                node.grad_fn = _ViewSizes(grad_fn, tuple(int(v) for v in sizes))
                try:
                    return reshape(graph, node)
                finally:
                    node.grad_fn = grad_fn

            def update_concat(graph: Any, node: Any) -> Any:
                try:
                    return concat(graph, node)
                except TypeError:  # a branch of unknown width: no mapping, and the groups through it stay whole
                    graph.__dict__.setdefault("_deepseek_unmapped", set()).add(node)
                    return None

            _ORIGINALS.update(update_reshape_index_mapping=reshape, update_concat_index_mapping=concat)
            module.update_reshape_index_mapping, module.update_concat_index_mapping = update_reshape, update_concat
        _compat_users += 1
    try:
        yield
    finally:
        with _COMPAT_LOCK:
            _compat_users -= 1
            if _compat_users == 0:
                for name, original in _ORIGINALS.items():
                    setattr(module, name, original)


def _output_shapes(model: torch.nn.Module, examples: tuple[Any, ...]) -> list[tuple[int, ...]]:
    """The shapes of the model's outputs on ``examples``; inputs the model cannot run are the caller's to fix."""
    try:
        with torch.no_grad():
            return [tuple(t.shape) for t in flatten_outputs(model(*examples))]
    except Exception as e:
        shown = [tuple(getattr(x, "shape", ())) for x in examples]
        raise invalid("example_inputs", shown, f"inputs {type(model).__name__} accepts (it fails: "
                                               f"{type(e).__name__}: {str(e)[:200]})") from e


def _channel_shuffles(model: torch.nn.Module, examples: tuple[Any, ...]) -> list[tuple[str, int, int]]:
    """(layer, channels, groups) for every view/reshape that splits the channels of an NCHW feature map into
    groups (``x.view(n, g, c // g, h, w)``, ShuffleNet's channel shuffle): what follows reorders channels."""
    from torch.overrides import TorchFunctionMode

    found: list[tuple[str, int, int]] = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            source = args[0] if args else None
            if name in ("view", "reshape", "unflatten") and isinstance(source, torch.Tensor) and source.ndim == 4 \
                    and isinstance(out, torch.Tensor) and out.ndim == 5 and out.shape[0] == source.shape[0] \
                    and out.shape[1] > 1 and out.shape[2] > 1 and out.shape[1] * out.shape[2] == source.shape[1] \
                    and tuple(out.shape[3:]) == tuple(source.shape[2:]):
                found.append((stack[-1] or type(model).__name__, int(source.shape[1]), int(out.shape[1])))
            return out

    with torch.no_grad(), _module_stack(model) as stack, Record():
        model(*examples)
    return found


@contextlib.contextmanager
def _module_stack(model: torch.nn.Module) -> Iterator[list[str]]:
    """The names of the modules whose forward is running, outermost first (``""``: the model), kept up to date
    while the context is open; after an exception, the last one is where it was raised."""
    stack: list[str] = [""]

    def enter(module: torch.nn.Module, args: Any, name: str = "") -> None:
        stack.append(name)

    def leave(module: torch.nn.Module, args: Any, out: Any) -> None:
        stack.pop()

    hooks = []
    for name, m in model.named_modules():
        if name:
            hooks.append(m.register_forward_pre_hook(functools.partial(enter, name=name)))
            hooks.append(m.register_forward_hook(leave))
    try:
        yield stack
    finally:
        for h in hooks:
            h.remove()


def _graph_outputs(out: Any) -> list[torch.Tensor]:
    """The model's output tensors, each behind an operation of its own: the dependency graph then has an
    output node with the output's real shape for every one, also where a layer's result is returned as is."""
    return [t + 0 for t in flatten_outputs(out) if isinstance(t, torch.Tensor) and t.grad_fn is not None]


def _kept_whole(tp: Any, model: torch.nn.Module, examples: tuple[Any, ...],
                ignored: list[torch.nn.Module]) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """Layers whose coupled group must not be pruned: (1) those whose output channels reach one of the
    model's outputs, through any chain of operations the dependency graph follows (activations, pooling,
    flatten, concatenation, residual adds, ...), since pruning them would change an output's shape; (2) the
    roots of groups the graph maps inconsistently (a channel index beyond a coupled layer's channels: a
    reshape or broadcast it misreads), since pruning them would fail or remove the wrong channels."""
    graph = tp.DependencyGraph().build_dependency(model, examples, output_transform=_graph_outputs, verbose=False)
    unknown = graph.__dict__.setdefault("_deepseek_unmapped", set())  # concatenations left unmapped (_graph_compat)
    skip = [sub for m in ignored for sub in m.modules()]
    outputs: list[torch.nn.Module] = []
    unmapped: list[torch.nn.Module] = []
    for group in graph.get_all_groups(ignored_layers=skip, root_module_types=_ROOTS):
        roots = [dep.target.module for dep, _ in group
                 if isinstance(dep.target.module, _ROOTS) and graph.is_out_channel_pruning_fn(dep.handler)]
        if any(isinstance(dep.target.module, tp.ops._OutputOp) for dep, _ in group):
            outputs += roots
        elif not _consistent(graph, group) or any(dep.target in unknown for dep, _ in group):
            unmapped += roots[:1] or [group[0].dep.target.module]
    return list(dict.fromkeys(outputs)), list(dict.fromkeys(unmapped))


def _consistent(graph: Any, group: Any) -> bool:
    """Every channel index the group would remove from a layer exists in that layer."""
    for dep, idxs in group:
        if not idxs or not isinstance(dep.target.module, torch.nn.Module):
            continue
        try:
            count = graph.get_out_channels(dep.target) if graph.is_out_channel_pruning_fn(dep.handler) \
                else graph.get_in_channels(dep.target)
        except Exception:  # an operation without a channel count of its own
            continue
        if isinstance(count, int) and max(int(getattr(i, "idx", i)) for i in idxs) >= count:
            return False
    return True


def _state(inplace: bool) -> str:
    return "the model passed in was modified (inplace=True): reload it" if inplace else "your model is unchanged"


def _node_name(node: Any, module_names: dict[torch.nn.Module, str]) -> str:
    """A layer's qualified name, or the traced op (add, cat, flatten, ...) for functional nodes."""
    return module_names.get(node.module) or str(getattr(node, "name", node))


def _check(model: torch.nn.Module, examples: tuple[Any, ...], shapes: list[tuple[int, ...]], inplace: bool) -> None:
    """The pruned model must still run and give outputs of the original shapes."""
    state = _state(inplace)
    try:
        with torch.no_grad(), _module_stack(model) as stack:
            got = [tuple(t.shape) for t in flatten_outputs(model(*examples))]
    except Exception as e:  # the innermost layer still entered is the one that failed
        where = stack[-1] or type(model).__name__
        raise invalid("model", type(model).__name__, f"a structure the dependency graph handles (after pruning, layer "
                      f"{where!r} fails: {type(e).__name__}: {str(e)[:200]}; it keeps a size the graph cannot update: "
                      f"pass ignore=[{where!r}] to keep it whole; {state})") from e
    if got != shapes:
        raise invalid("model", type(model).__name__, f"outputs of unchanged shape after pruning (was {shapes}, now {got}; {state})")


def slimming_penalty(model: torch.nn.Module, strength: float = 1e-4) -> torch.Tensor:
    """``strength`` × the L1 norm of every BatchNorm scale (network slimming, Liu et al. 2017). Add it to the
    loss while training: channels the task does not need drift to γ ≈ 0, and ``importance="bn_scale"``
    then removes exactly those."""
    check_number(strength, "strength", minimum=0)
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    scales = [m.weight for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    if not scales:
        raise invalid("model", type(model).__name__, "a model with affine BatchNorm layers (network slimming acts on their scales)")
    return strength * sum(w.abs().sum() for w in scales)
