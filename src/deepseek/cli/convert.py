"""``deepseek convert llama SRC --output DIR``: a Llama-architecture checkpoint (a local Hugging Face folder, a GGUF
file, or ``smollm2``, the bundled one) written as a :class:`~deepseek.nn.DeepSeekForCausalLM` folder
(``save_pretrained``: config + safetensors, with the tokenizer when the source has one), checked by loading it
back and comparing logits with the source model."""

from __future__ import annotations

import argparse

from .._core.errors import InvalidArgumentError

ARCHITECTURES = ("llama",)
# the Python argument a library error names -> the flag the user typed
FLAGS = {"source": "SRC", "output": "--output", "max_shard_size": "--max-shard-size"}


def _shard_size_type(text: str) -> int:
    from ..nn.convert import shard_size_bytes

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


def run_cli(args: argparse.Namespace) -> int:
    from ..nn.convert import convert_checkpoint
    from ._common import console

    done = convert_checkpoint(args.source, args.output, max_shard_size=args.max_shard_size)
    console().print(f"[green]wrote[/] {done['output']}: DeepSeekForCausalLM, {done['parameters'] / 1e6:.1f}M parameters"
                    f"{', tokenizer' if done['tokenizer'] else ''}; logits within {done['max_abs_logit_diff']:.2e} "
                    "of the source")
    return 0
