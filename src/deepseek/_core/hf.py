"""Hugging Face checkpoints written as plain folders, including models transformers read from GGUF files."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_pretrained_folder(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write ``model`` and ``tokenizer`` into ``folder`` so ``from_pretrained(folder)`` gives them back. A model
    read from a GGUF file refuses ``save_pretrained`` (transformers counts it as quantized), but its float image is
    an ordinary checkpoint: the weights (tied ones once), the config without its GGUF entry, the generation
    config."""
    try:
        model.save_pretrained(folder)
    except ValueError:
        from safetensors.torch import save_model

        folder.mkdir(parents=True, exist_ok=True)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        type(model.config).from_dict(config).save_pretrained(folder)
        model.generation_config.save_pretrained(folder)
        save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
