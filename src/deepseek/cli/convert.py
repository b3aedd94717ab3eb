"""``deepseek convert llama SRC --output DIR``: a Llama-architecture checkpoint (a local Hugging Face folder, a GGUF
file, or ``smollm2``, the bundled one) written as a :class:`~deepseek.nn.DeepSeekForCausalLM` folder
(``save_pretrained``: config + safetensors, with the tokenizer when the source has one), checked by loading it
back and comparing logits with the source model."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from .._core.errors import DeepSeekError, InvalidArgumentError, VerificationError, invalid

ARCHITECTURES = ("llama",)
# the Python argument a library error names -> the flag the user typed
FLAGS = {"source": "SRC", "output": "--output", "max_shard_size": "--max-shard-size"}
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


def _shard_size_type(text: str) -> int:
    try:
        return shard_size_bytes(text)
    except InvalidArgumentError:
        raise argparse.ArgumentTypeError(f"expected a size such as 500MB, 2GB, 1GiB or a number of bytes >= 1, got "
                                         f"{text!r}") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import declare_flag_names, declare_outputs

    parser.add_argument("architecture", choices=ARCHITECTURES, help="the source checkpoint's architecture")
    parser.add_argument("source", metavar="SRC", help="a local Hugging Face folder, a .gguf file, or smollm2")
    parser.add_argument("--output", "-o", required=True, help="a new folder for the converted model")
    parser.add_argument("--max-shard-size", type=_shard_size_type, default="2GB",
                        help="safetensors shard size: 500MB, 2GB, 1GiB or bytes (default 2GB)")
    declare_outputs(parser, folders=("output",))
    declare_flag_names(parser, FLAGS)


def convert(source: str, output: str | Path, *, max_shard_size: str | int = "2GB") -> dict[str, Any]:
    """Convert ``source`` into ``output`` (a new folder) and verify it; returns what was checked."""
    from .._core.atomic import check_output
    from ..nn.convert import check_llama_source

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
    from ..nn.convert import llama_to_deepseek, load_llama
    from ..nn.modeling import DeepSeekForCausalLM

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


def run_cli(args: argparse.Namespace) -> int:
    from ._common import console

    done = convert(args.source, args.output, max_shard_size=args.max_shard_size)
    console().print(f"[green]wrote[/] {done['output']}: DeepSeekForCausalLM, {done['parameters'] / 1e6:.1f}M parameters"
                    f"{', tokenizer' if done['tokenizer'] else ''}; logits within {done['max_abs_logit_diff']:.2e} "
                    "of the source")
    return 0


def _translated(exc: DeepSeekError) -> DeepSeekError:
    """``exc`` naming the flag instead of the Python argument (``output`` → ``--output``)."""
    message = str(exc)
    for name, flag in FLAGS.items():
        for sep in (":", " ("):
            if message.startswith(name + sep):
                return type(exc)(flag + message[len(name):])
    return exc
