"""Llama-architecture checkpoints (SmolLM2, Llama 2/3 shapes) as :class:`DeepSeekForCausalLM`: the same weight
names, the gate off, dense SwiGLU MLPs; mismatched weights are refused with the missing and unexpected keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._core.checks import check_int
from .._core.errors import ArtifactError, VerificationError, invalid

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
        check_int(value, f"{where}: field {name!r}", minimum=1, optional=True, expected="an integer >= 1")
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


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30, "TIB": 2**40}


def shard_size_bytes(value: Any, *, argument: str = "max_shard_size") -> int:
    """A shard size as bytes: an integer of bytes, or a number with a unit (``500MB``, ``2GB``, ``1.5GiB``)."""
    import math
    import re

    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", value, re.IGNORECASE) \
            if isinstance(value, str) else None
        if match is None:
            raise invalid(argument, value, "a size such as 500MB, 2GB, 1GiB or a number of bytes")
        size = float(match.group(1)) * _UNITS[(match.group(2) or "").upper()]
        size = int(size) if math.isfinite(size) else 0
    if size < 1:
        raise invalid(argument, value, "a size of at least 1 byte, such as 500MB or 2GB")
    return size


def convert_checkpoint(source: str | Path, output: str | Path, *, max_shard_size: str | int = "2GB") -> dict[str, Any]:
    """Convert the Llama-architecture checkpoint ``source`` (``smollm2``, a local Hugging Face folder or a .gguf file)
    into ``output``, a new :class:`DeepSeekForCausalLM` folder (config + safetensors shards of at most
    ``max_shard_size``, the tokenizer when the source has one), verified by loading it back and comparing logits with
    the source; returns what was checked (``output``, ``max_abs_logit_diff``, ``tokenizer``, ``parameters``)."""
    import shutil

    from .._core.atomic import check_output

    shard_bytes = shard_size_bytes(max_shard_size)
    if not isinstance(source, (str, Path)) or not str(source):
        raise invalid("source", source, "smollm2, a local Hugging Face folder or a .gguf file")
    source = str(source)
    # every cheap check before the checkpoint is loaded: the output folder, then the source's files
    out = check_output(output, argument="output", inputs=[source] if Path(source).exists() else [], folder=True)
    if out.is_dir() and any(out.iterdir()):
        raise invalid("output", str(out), "a new or empty folder (it is never overwritten)")
    if source != "smollm2":
        check_llama_source(source)
    import torch
    from transformers import AutoTokenizer

    from .. import assets
    from .modeling import DeepSeekForCausalLM

    tokenizer = None
    if source == "smollm2":
        llama, tokenizer = assets.smollm2()
    else:
        llama = load_llama(source)
        path = Path(source)
        try:
            tokenizer = (AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
                         if path.suffix == ".gguf" else AutoTokenizer.from_pretrained(path, local_files_only=True))
        except (OSError, ValueError, KeyError, TypeError):
            tokenizer = None  # weights only
    model = llama_to_deepseek(llama)
    staged = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        model.save_pretrained(staged, max_shard_size=shard_bytes)
        if tokenizer is not None:
            tokenizer.save_pretrained(staged)
        loaded = DeepSeekForCausalLM.from_pretrained(staged).eval()
        ids = torch.arange(1, 33)[None] % llama.config.vocab_size
        with torch.no_grad():
            diff = float((loaded(ids).logits - llama(ids).logits).abs().max())
        if not diff <= 1e-4:
            raise VerificationError(f"converted model differs from the source by {diff:.3g} in its logits (> 1e-4)")
        if out.exists():
            out.rmdir()
        staged.replace(out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {"output": str(out), "max_abs_logit_diff": diff, "tokenizer": tokenizer is not None,
            "parameters": sum(p.numel() for p in model.parameters())}
