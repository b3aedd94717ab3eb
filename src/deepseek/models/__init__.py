"""Built-in model names for benchmarks and demos: a model plus example inputs, built offline.

``resnet50`` is randomly initialised (speed does not depend on the weights), ``mobilenet_v2`` carries the
real ImageNet weights from the offline asset, ``bert-base`` and ``gpt2`` are built from their Hugging Face
configs (bert-base-uncased and gpt2 sizes) with random weights, ``smollm2`` is the bundled SmolLM2-135M (real
weights) as a :class:`~deepseek.nn.DeepSeekForCausalLM`, prompted with the opening of Hamlet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A ready-to-run model and a function that makes example inputs for a batch size."""

    name: str
    model: torch.nn.Module
    make_inputs: Callable[[int], tuple[Any, ...]]
    input_names: tuple[str, ...]
    task: str  # "image-classification" | "text-encoder" | "causal-lm"
    real_weights: bool

    def example_inputs(self, batch_size: int = 1) -> tuple[Any, ...]:
        return self.make_inputs(batch_size)


def _image_inputs(batch_size: int, size: int = 224) -> tuple[Any, ...]:

    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch_size, 3, size, size, generator=g),)


def _token_inputs(vocab: int, seq_len: int, with_mask: bool) -> Callable[[int], tuple[Any, ...]]:
    def make(batch_size: int) -> tuple[Any, ...]:
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (batch_size, seq_len), generator=g)
        return (ids, torch.ones_like(ids)) if with_mask else (ids,)

    return make


def _torchvision(name: str) -> ModelSpec:
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    return ModelSpec(name, model, _image_inputs, ("input",), "image-classification", False)


def _mobilenet_v2() -> ModelSpec:
    from .. import assets

    return ModelSpec("mobilenet_v2", assets.mobilenet_v2(), _image_inputs, ("input",), "image-classification", True)


def _bert_base(seq_len: int = 128) -> ModelSpec:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(attn_implementation="eager")  # bert-base-uncased sizes
    model = BertModel(config, add_pooling_layer=False).eval()
    return ModelSpec(
        "bert-base", HiddenStates(model).eval(), _token_inputs(config.vocab_size, seq_len, True),
        ("input_ids", "attention_mask"), "text-encoder", False,
    )


def _gpt2(seq_len: int = 32) -> ModelSpec:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(attn_implementation="eager")  # gpt2 (124M) sizes
    model = GPT2LMHeadModel(config).eval()
    return ModelSpec("gpt2", model, _token_inputs(config.vocab_size, seq_len, False), ("input_ids",), "causal-lm", False)


def _smollm2(prompt_tokens: int = 32) -> ModelSpec:
    from .. import assets
    from ..nn import DeepSeekForCausalLM

    llama, tokenizer = assets.smollm2()
    model = DeepSeekForCausalLM.from_llama(llama).eval()
    ids = tokenizer(assets.hamlet(), return_tensors="pt").input_ids[:, :prompt_tokens]

    def make(batch_size: int) -> tuple[Any, ...]:
        return (ids.repeat(batch_size, 1),)

    return ModelSpec("smollm2", model, make, ("input_ids",), "causal-lm", True)


class HiddenStates(torch.nn.Module):
    """A Hugging Face encoder that returns a plain tensor (export- and benchmark-friendly)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Logits(torch.nn.Module):
    """A Hugging Face causal LM that returns its logits tensor (no cache), for export and profiling."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids, use_cache=False).logits


BUILTIN: dict[str, Callable[[], ModelSpec]] = {
    "resnet50": lambda: _torchvision("resnet50"),
    "resnet18": lambda: _torchvision("resnet18"),
    "mobilenet_v2": _mobilenet_v2,
    "bert-base": _bert_base,
    "gpt2": _gpt2,
    "smollm2": _smollm2,
}


ALIASES = {"smollm2-135m": "smollm2", "mobilenet-v2": "mobilenet_v2", "mobilenetv2": "mobilenet_v2",
           "bert": "bert-base", "bert-base-uncased": "bert-base"}


def resolve_name(name: str) -> str:
    """The key in :data:`BUILTIN` for a built-in model name or alias; an error naming ``model`` otherwise."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    key = ALIASES.get(key, key)
    if key not in BUILTIN:
        raise invalid("model", name, f"an existing model file or a built-in name, one of {sorted(BUILTIN)}")
    return key


def get(name: str) -> ModelSpec:
    """Build a built-in model by name (see :data:`BUILTIN`)."""
    return BUILTIN[resolve_name(name)]()


def resolve_model(name_or_path: str, shapes: list[tuple[int, ...]] | None, *, arch: str | None = None,
                  trust_pickle: bool = False, batch_size: int | None = None) -> tuple[Any, tuple[Any, ...] | None, list[str] | None, str]:
    """A built-in name or a file → (torch module or file path, example inputs or None, input names, label).

    Example inputs come from ``shapes`` (random float32, seed 0) when given; built-in models bring their own.
    """
    path = Path(name_or_path)
    if not path.exists() and name_or_path.replace("_", "-").lower() in {k.replace("_", "-") for k in BUILTIN} | {"bert", "mobilenetv2"}:
        spec = get(name_or_path)
        examples = spec.example_inputs(batch_size or 1)
        if shapes:  # a built-in model brings its inputs: shapes may only change the batch, never be ignored
            own = [tuple(x.shape[1:]) for x in examples]
            if len(shapes) != len(own) or any(tuple(s[1:]) != o for s, o in zip(shapes, own)):
                raise invalid("inputs", shapes, f"the shapes of the built-in {spec.name}'s own inputs, (N, "
                              f"{', '.join(map(str, own[0]))}) for its first (it brings its example inputs: "
                              "shapes apply to model files)")
            examples = spec.example_inputs(shapes[0][0])
        return spec.model, examples, list(spec.input_names), spec.name
    if not path.exists():
        raise invalid("model", name_or_path, f"an existing model file or a built-in name {sorted(BUILTIN)}")
    examples = None
    if shapes:
        g = torch.Generator().manual_seed(0)
        examples = tuple(torch.randn(*s, generator=g) for s in shapes)
    from ..runtime.artifacts import detect_kind, load_exported_program, load_module

    kind = detect_kind(path)
    if kind == "onnx":
        return path, examples, None, path.name
    module = load_module(path, kind, arch=arch, trust_pickle=trust_pickle)
    if kind == "exported_program" and examples is None:
        args = getattr(load_exported_program(path), "example_inputs", None)
        if args and args[0]:
            examples = tuple(args[0])
    return module, examples, None, path.name


def refuse_arch_unless_weights(model: Any, arch: str | None, *, argument: str = "arch", name: str = "model") -> None:
    """``arch`` builds the model a state_dict/.safetensors file fills; given with anything else it would be ignored,
    so it is refused, naming ``argument`` (and the model as ``name``)."""
    if not arch:
        return
    from ..runtime.artifacts import detect_kind

    path = Path(model) if isinstance(model, (str, Path)) else None
    kind = detect_kind(path) if path is not None and path.is_file() else None
    if kind not in ("state_dict", "safetensors"):
        raise invalid(argument, arch, f"only with a state_dict (.pt/.pth) or .safetensors {name} file (this {name} "
                                      "carries its own architecture)")
