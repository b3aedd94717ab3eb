"""``deepseek convert llama SRC --output DIR``: a Llama-architecture checkpoint (a local Hugging Face folder, a GGUF
file, or ``smollm2``, the bundled one) written as a :class:`~deepseek.nn.DeepSeekForCausalLM` folder
(``save_pretrained``: config + safetensors, with the tokenizer when the source has one), checked by loading it
back and comparing logits with the source model."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from .._errors import VerificationError, invalid

ARCHITECTURES = ("llama",)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("architecture", choices=ARCHITECTURES, help="the source checkpoint's architecture")
    parser.add_argument("source", metavar="SRC", help="a local Hugging Face folder, a .gguf file, or smollm2")
    parser.add_argument("--output", "-o", required=True, help="a new folder for the converted model")
    parser.add_argument("--max-shard-size", default="2GB", help="safetensors shard size (save_pretrained)")


def convert(source: str, output: str | Path, *, max_shard_size: str = "2GB") -> dict[str, Any]:
    """Convert ``source`` into ``output`` (a new folder) and verify it; returns what was checked."""
    import torch
    from transformers import AutoTokenizer

    from .. import assets
    from .convert import llama_to_deepseek, load_llama
    from .modeling import DeepSeekForCausalLM

    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise invalid("--output", str(out), "a new or empty folder (it is never overwritten)")
    tokenizer = None
    if source == "smollm2":
        llama, tokenizer = assets.smollm2()
    else:
        llama = load_llama(source)
        path = Path(source)
        try:
            tokenizer = (AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
                         if path.suffix == ".gguf" else AutoTokenizer.from_pretrained(path, local_files_only=True))
        except (OSError, ValueError):
            tokenizer = None  # weights only
    model = llama_to_deepseek(llama)
    staged = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        model.save_pretrained(staged, max_shard_size=max_shard_size)
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
    from .._cli_common import console

    done = convert(args.source, args.output, max_shard_size=args.max_shard_size)
    console().print(f"[green]wrote[/] {done['output']}: DeepSeekForCausalLM, {done['parameters'] / 1e6:.1f}M parameters"
                    f"{', tokenizer' if done['tokenizer'] else ''}; logits within {done['max_abs_logit_diff']:.2e} "
                    "of the source")
    return 0
