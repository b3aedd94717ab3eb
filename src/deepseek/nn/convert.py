"""Llama-architecture checkpoints (SmolLM2, Llama 2/3 shapes) as :class:`DeepSeekForCausalLM`: the same weight
names, the gate off, dense SwiGLU MLPs; mismatched weights are refused with the missing and unexpected keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._core.errors import ArtifactError, invalid

SOURCE_KINDS = ("a LlamaForCausalLM, a local Hugging Face folder (config.json + weights) or a .gguf file (nothing "
                "is downloaded)")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# Llama config fields: a wrong type here becomes a deep error inside transformers, so they are checked first
_CONFIG_INTS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "max_position_embeddings")


def check_llama_source(source: Any) -> None:
    """Refuse, before anything is loaded, a source that is not a Llama Hugging Face folder (config.json a JSON
    object with sizes of the right types, a weights file beside it) or a readable, complete GGUF file; the error
    names ``source`` and the file."""
    if not isinstance(source, (str, Path)):
        from transformers import PreTrainedModel

        if isinstance(source, PreTrainedModel):
            return
        raise invalid("source", type(source).__name__, SOURCE_KINDS)
    if not str(source):
        raise invalid("source", source, SOURCE_KINDS)
    path = Path(source)
    if path.is_dir() and (path / "config.json").is_file():
        _check_config(path / "config.json")
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise ArtifactError(f"source: {path} has no weights ({', '.join(WEIGHT_FILES)})")
        return
    if path.is_file() and path.suffix == ".gguf":
        _check_gguf(path)
        return
    raise invalid("source", str(source), SOURCE_KINDS)


def _check_config(config: Path) -> None:
    from .._core.config import field, read_json

    data = read_json(config, argument="source", what="a Hugging Face model config", mapping=True)
    where = f"source ({config})"
    model_type = field(data, "model_type", str, source=where)
    if model_type != "llama":
        raise invalid(f"{where}: field 'model_type'", model_type, "'llama' (a Llama-architecture checkpoint)")
    for name in _CONFIG_INTS:
        value = field(data, name, (int, type(None)), source=where, required=False)
        if value is not None and value < 1:
            raise invalid(f"{where}: field {name!r}", value, "an integer >= 1")
    for name in ("rms_norm_eps", "rope_theta"):
        value = field(data, name, (int, float, type(None)), source=where, required=False)
        if value is not None and not value > 0:
            raise invalid(f"{where}: field {name!r}", value, "a number > 0")


def _check_gguf(path: Path) -> None:
    """A GGUF file: its magic, its header and every tensor's bytes present (a truncated download is refused)."""
    from .._core.errors import require

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise ArtifactError(f"source: {path} cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise ArtifactError(f"source: {path} is empty, not a GGUF file")
    if head[:4] != b"GGUF":
        raise ArtifactError(f"source: {path} is not a GGUF file (it does not start with the GGUF magic)")
    if len(head) < 24:
        raise ArtifactError(f"source: {path} is a truncated GGUF file ({size} bytes: not even its header)")
    gguf = require("gguf", "reading GGUF files", "gguf")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # a corrupt or truncated file fails anywhere inside the parser
        raise ArtifactError(f"source: {path} is a truncated or corrupt GGUF file ({type(exc).__name__}: "
                            f"{exc})") from None
    if not reader.tensors:
        raise ArtifactError(f"source: {path} is a GGUF file without tensors (weights)")
    end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    if end > size:
        raise ArtifactError(f"source: {path} is a truncated GGUF file ({size} bytes, its tensors need {end})")
    arch = reader.get_field("general.architecture")
    name = bytes(arch.parts[arch.data[0]]).decode("utf-8", "replace") if arch is not None and arch.data else None
    if name != "llama":
        raise invalid(f"source ({path}): general.architecture", name, "'llama' (a Llama-architecture checkpoint)")


def load_llama(source: Any) -> Any:
    """A ``LlamaForCausalLM`` from a loaded model, a local Hugging Face folder or a GGUF file (never downloaded)."""
    from .._core.errors import DeepSeekError

    check_llama_source(source)  # before transformers is imported: a bad file is refused at once
    from transformers import AutoModelForCausalLM, PreTrainedModel

    if isinstance(source, PreTrainedModel):
        return source
    path = Path(source)
    try:
        if path.is_dir():
            return AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    except (DeepSeekError, ImportError):
        raise
    except Exception as exc:  # weights that do not load: corrupt, mismatched, of an unknown format
        raise ArtifactError(f"source: {path} could not be loaded as a Llama checkpoint ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]})") from None


def llama_to_deepseek(source: Any, **config_overrides: Any) -> Any:
    """:class:`DeepSeekForCausalLM` holding ``source``'s weights unchanged (float32 unless the source is not)."""
    from .modeling import DeepSeekConfig, DeepSeekForCausalLM

    llama = load_llama(source)
    lc = llama.config
    if lc.model_type != "llama":
        raise invalid("source", lc.model_type, "a Llama-architecture model (model_type 'llama')")
    if getattr(lc, "hidden_act", "silu") != "silu" or getattr(lc, "mlp_bias", False):
        raise invalid("source", f"hidden_act={lc.hidden_act}, mlp_bias={getattr(lc, 'mlp_bias', False)}",
                      "a SwiGLU (silu) MLP without biases")
    rope = dict(getattr(lc, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
        raise invalid("source", f"rope_type={rope.get('rope_type')}", "plain rotary positions (rope_type 'default')")
    fields = {"vocab_size": lc.vocab_size, "hidden_size": lc.hidden_size, "intermediate_size": lc.intermediate_size,
              "num_hidden_layers": lc.num_hidden_layers, "num_attention_heads": lc.num_attention_heads,
              "num_key_value_heads": lc.num_key_value_heads, "head_dim": getattr(lc, "head_dim", None),
              "max_position_embeddings": lc.max_position_embeddings,
              "rope_theta": float(rope.get("rope_theta", getattr(lc, "rope_theta", 10000.0))),
              "rms_norm_eps": lc.rms_norm_eps, "tie_word_embeddings": bool(lc.tie_word_embeddings),
              "attention_bias": bool(getattr(lc, "attention_bias", False)), "pad_token_id": lc.pad_token_id,
              "bos_token_id": lc.bos_token_id, "eos_token_id": lc.eos_token_id}
    config = DeepSeekConfig(**{**fields, **config_overrides})
    model = DeepSeekForCausalLM(config).to(next(llama.parameters()).dtype)
    state = {k: v for k, v in llama.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise invalid("source", "its weights", f"the same tensors as DeepSeekForCausalLM with this config: missing "
                                              f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected "
                                              f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval()
