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

import copy
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .._config import BaseConfig
from .._errors import invalid, require
from .._select import matches
from .._tensors import as_input_tuple, flatten_outputs

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
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0 <= self.ratio < 1:
            raise invalid("ratio", self.ratio, "a fraction of channels in [0, 1)")
        if self.importance not in IMPORTANCES:
            raise invalid("importance", self.importance, f"one of {IMPORTANCES}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise invalid("steps", self.steps, "a positive integer")
        if self.round_to is not None and (not isinstance(self.round_to, int) or self.round_to < 1):
            raise invalid("round_to", self.round_to, "None or a positive integer such as 8 or 16")
        object.__setattr__(self, "ignore", (self.ignore,) if isinstance(self.ignore, str) else tuple(self.ignore))


@dataclasses.dataclass
class ChannelPruningResult:
    """The pruned model (changed in place) and what it cost: parameters and MACs before/after, and the
    coupled groups removed at each step (layer names and how many channels)."""

    model: torch.nn.Module
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    protected: list[str]
    groups: list[list[str]]

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
    """Conv/Linear layers whose result is (a view of) one of the model's outputs: pruning them changes the
    output shape, so they are kept whole."""
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

    ``example_inputs`` trace the dependency graph once. ``finetune(model, step)`` runs after every
    progressive step (e.g. an epoch at lr/10, SPEC.md §3). ``gradients(model)`` must run a backward pass
    for ``importance="taylor"``. Pass a :class:`ChannelPruningConfig` or its fields as keywords.
    """
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    if ratio is not None:
        kwargs["ratio"] = ratio
    from .._config import config_or_fields

    config = config_or_fields(ChannelPruningConfig, config, kwargs)
    if example_inputs is None:
        raise invalid("example_inputs", None, "sample inputs to trace the model's dependency graph")
    examples = as_input_tuple(example_inputs, "example_inputs")
    if not any(isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)) for m in model.modules()):
        raise invalid("model", type(model).__name__, "a model with Conv/Linear modules to prune (a loaded .pt2 is a flat "
                                                     "graph of operators: prune the nn.Module, then export)")
    if config.importance == "taylor" and gradients is None:
        raise invalid("gradients", None, "a callable running loss.backward() on real data (importance='taylor')")
    tp = _tp()
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    with torch.no_grad():
        shapes = [tuple(t.shape) for t in flatten_outputs(model(*examples))]
    protected = output_layers(model, examples)
    names = dict(model.named_modules())
    ignored = [names[n] for n in protected] + [m for n, m in names.items() if n and matches(n, m, config.ignore)]
    blocks = _attention_blocks(model)
    # Attention: remove the same offsets in every head, so each head stays a head (a plain ranking would mix
    # dims of different heads). Hugging Face q/k/v Linears shrink their head width; torch's
    # MultiheadAttention's embedding dim is the residual stream's, which shrinks with it.
    heads = {lin: m.num_attention_heads for m in blocks for lin in (m.query, m.key, m.value)}
    heads |= {m: m.num_heads for m in model.modules() if isinstance(m, torch.nn.MultiheadAttention)}
    if blocks:
        ignored += _transformer_ignores(model)
    macs_before, params_before = tp.utils.count_ops_and_params(model, examples)
    try:
        with warnings.catch_warnings():
            # parameters outside Conv/Linear (ViT's class token, position embedding) lose channels on their
            # last dim, right for them; the shape check after every step catches a model where it is not
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            pruner = tp.pruner.MetaPruner(
                model, examples, importance=_importance(config.importance), global_pruning=config.global_ranking,
                pruning_ratio=config.ratio, iterative_steps=config.steps, ignored_layers=ignored,
                round_to=config.round_to, out_channel_groups=heads,
                output_transform=lambda out: sum(t.float().sum() for t in flatten_outputs(out) if isinstance(t, torch.Tensor)))
    except Exception as e:  # tracing failed: name the model and the reason
        raise invalid("model", type(model).__name__, f"a model Torch-Pruning can trace ({type(e).__name__}: {str(e)[:300]})") from e
    module_names = {m: n for n, m in names.items()}
    groups: list[list[str]] = []
    for step in range(config.steps):
        if gradients is not None:
            model.zero_grad()
            gradients(model)
        for group in pruner.step(interactive=True):
            groups.append([f"{_node_name(dep.target, module_names)} ({getattr(dep.handler, '__name__', dep.handler)}): "
                           f"{len(idxs)} channels" for dep, idxs in group])
            group.prune()
        _sync_sizes(model, blocks)
        model.zero_grad()
        _check(model, examples, shapes, inplace)
        if finetune is not None:
            finetune(model, step)
            model.eval()
    macs_after, params_after = tp.utils.count_ops_and_params(model, examples)
    return ChannelPruningResult(model, int(params_before), int(params_after), int(macs_before), int(macs_after), protected, groups)


def _node_name(node: Any, module_names: dict[torch.nn.Module, str]) -> str:
    """A layer's qualified name, or the traced op (add, cat, flatten, ...) for functional nodes."""
    return module_names.get(node.module) or str(getattr(node, "name", node))


def _check(model: torch.nn.Module, examples: tuple[Any, ...], shapes: list[tuple[int, ...]], inplace: bool) -> None:
    """The pruned model must still run and give outputs of the original shapes."""
    state = "the model passed in was modified (inplace=True): reload it" if inplace else "your model is unchanged"
    try:
        with torch.no_grad():
            got = [tuple(t.shape) for t in flatten_outputs(model(*examples))]
    except Exception as e:
        raise invalid("model", type(model).__name__, f"a structure the dependency graph handles (the pruned copy fails: "
                                                     f"{str(e)[:200]}; {state})") from e
    if got != shapes:
        raise invalid("model", type(model).__name__, f"outputs of unchanged shape after pruning (was {shapes}, now {got}; {state})")


def slimming_penalty(model: torch.nn.Module, strength: float = 1e-4) -> torch.Tensor:
    """``strength`` × the L1 norm of every BatchNorm scale (network slimming, Liu et al. 2017). Add it to the
    loss while training: channels the task does not need drift to γ ≈ 0, and ``importance="bn_scale"``
    then removes exactly those."""
    if not isinstance(strength, (int, float)) or strength < 0:
        raise invalid("strength", strength, "a number >= 0")
    scales = [m.weight for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    if not scales:
        raise invalid("model", type(model).__name__, "a model with affine BatchNorm layers (network slimming acts on their scales)")
    return strength * sum(w.abs().sum() for w in scales)
