"""Bad input to ``deepseek convert llama`` and its Python API: one line naming SRC, the flag or the argument,
exit status 2, inputs unchanged, nothing written; every case fails before a checkpoint is loaded (no real GGUF)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from _refusals import refused
from deepseek import ArtifactError, InvalidArgumentError
from deepseek.cli import _run
from deepseek.nn.convert import check_llama_source, load_llama, shard_size_bytes
from deepseek.nn.convert import convert_checkpoint as convert

LLAMA = {"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
         "num_attention_heads": 2, "num_key_value_heads": 1}


def _convert(src: Path, output: Path, *flags: str) -> list[str]:
    """``deepseek convert llama SRC --output OUTPUT FLAGS``."""
    return ["convert", "llama", str(src), "--output", str(output), *flags]


def _gguf(path: Path, arch: str = "llama") -> Path:
    """A tiny, complete GGUF file with one tensor (not a model: enough for the file checks)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_tensor("token_embd.weight", np.zeros((8, 16), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _hf_folder(tmp_path: Path, config, weights: bool = True) -> Path:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if weights:
        (folder / "model.safetensors").write_bytes(b"\x00" * 16)
    return folder


@pytest.mark.parametrize(("content", "words"), [
    (b"", ["SRC", "empty"]),
    (os.urandom(256), ["SRC", "not a GGUF file"]),
    (b"GGUF\x03\x00", ["SRC", "truncated"]),
    (b"GGUF\x03\x00\x00\x00" + b"\x05" * 16 + b"\x01" * 40, ["SRC", "truncated or corrupt"]),
])
def test_a_file_that_is_not_a_whole_gguf_is_one_line(tmp_path, capsys, content, words):
    src = tmp_path / "model.gguf"
    src.write_bytes(content)
    refused(_convert(src, tmp_path / "out"), capsys, all_of=words, unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_truncated_gguf_download_is_refused(tmp_path, capsys):
    whole = _gguf(tmp_path / "whole.gguf").read_bytes()
    src = tmp_path / "model.gguf"
    src.write_bytes(whole[:-200])
    refused(_convert(src, tmp_path / "out"), capsys, all_of=["SRC", "truncated"], unchanged=tmp_path)
    other = _gguf(tmp_path / "gpt.gguf", arch="gpt2")
    refused(_convert(other, tmp_path / "out"), capsys, all_of=["SRC", "general.architecture"], unchanged=tmp_path)
    with pytest.raises(ArtifactError, match=r"^source: .*truncated"):
        load_llama(src)
    check_llama_source(tmp_path / "whole.gguf")  # the whole file passes the checks


@pytest.mark.parametrize(("config", "words"), [
    ("{not json", ["SRC", "valid JSON"]),
    ("[1, 2]", ["SRC", "object"]),
    (b"\xff\xfe\x00config".decode("latin-1"), ["SRC"]),
    ({**LLAMA, "hidden_size": "big"}, ["SRC", "'hidden_size'", "integer"]),
    ({**LLAMA, "num_hidden_layers": 0}, ["SRC", "'num_hidden_layers'", ">= 1"]),
    ({**LLAMA, "rms_norm_eps": "tiny"}, ["SRC", "'rms_norm_eps'"]),
    ({k: v for k, v in LLAMA.items() if k != "model_type"}, ["SRC", "'model_type'"]),
    ({**LLAMA, "model_type": "gpt2"}, ["SRC", "'model_type'", "llama"]),
])
def test_a_bad_config_json_is_one_line_naming_the_file_and_field(tmp_path, capsys, config, words):
    src = _hf_folder(tmp_path, config)
    refused(_convert(src, tmp_path / "out"), capsys, all_of=[*words, "config.json"], unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_folder_without_weights_or_a_missing_source_is_refused(tmp_path, capsys):
    src = _hf_folder(tmp_path, LLAMA, weights=False)
    for source, words in ((src, ["SRC", "no weights"]), (tmp_path / "nope", ["SRC", "nothing is downloaded"]),
                          (tmp_path / "hf" / "config.json", ["SRC"])):
        refused(_convert(source, tmp_path / "out"), capsys, all_of=words, unchanged=tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", ["banana", "0", "-5", "0MB", "1.5XB", "", "GB", "nanGB"])
def test_a_bad_max_shard_size_is_an_argparse_error(tmp_path, capsys, size):
    src = _gguf(tmp_path / "whole.gguf")
    refused(_convert(src, tmp_path / "out", f"--max-shard-size={size}"), capsys, "--max-shard-size",
            unchanged=tmp_path)


def test_shard_sizes_are_read_as_bytes():
    assert shard_size_bytes("500MB") == 500 * 10**6 and shard_size_bytes("2GB") == 2 * 10**9
    assert shard_size_bytes("1GiB") == 2**30 and shard_size_bytes("123") == 123 and shard_size_bytes(4096) == 4096
    assert shard_size_bytes("1.5 gb") == 1_500_000_000
    with pytest.raises(InvalidArgumentError, match=r"^max_shard_size: "):
        shard_size_bytes("banana")


def test_a_bad_output_is_refused_before_converting(tmp_path, capsys):
    src = _gguf(tmp_path / "whole.gguf")
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    for output in (taken, full, src, taken / "sub"):
        refused(_convert(src, output), capsys, "--output", unchanged=tmp_path)
    hf = _hf_folder(tmp_path, LLAMA)
    refused(_convert(hf, hf), capsys, "--output", unchanged=tmp_path)  # the source
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            refused(_convert(src, locked / "out"), capsys, "--output", unchanged=tmp_path)
        finally:
            locked.chmod(0o700)
    assert taken.read_text() == "mine" and (full / "keep.txt").read_text() == "keep"


def test_the_python_api_names_the_python_argument(tmp_path):
    src = _gguf(tmp_path / "whole.gguf")
    with pytest.raises(InvalidArgumentError, match=r"^max_shard_size: "):
        convert(str(src), tmp_path / "out", max_shard_size="banana")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"^output: "):
        convert(str(src), tmp_path / "taken")
    with pytest.raises(InvalidArgumentError, match=r"^source: "):
        convert(str(tmp_path / "nope"), tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match=r"^source: "):
        load_llama(12)
    assert not (tmp_path / "out").exists()


def test_a_good_tiny_folder_still_converts(tmp_path, capsys):
    """The checks refuse nothing transformers itself writes (a tiny Llama saved by save_pretrained)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{k: v for k, v in LLAMA.items() if k != "model_type"}, max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "src")
    check_llama_source(tmp_path / "src")
    assert _run(["convert", "llama", str(tmp_path / "src"), "--output", str(tmp_path / "out"),
                 "--max-shard-size", "500MB"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
