"""Bad input to ``deepseek train`` and the trainers: one line naming the flag (or the Python argument), exit status
2, and no process started (the script's marker file never appears); nothing trains."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _refusals import refused
from deepseek import InvalidArgumentError
from deepseek.train import DeepSeekTrainer, DistributedTrainer
from deepseek.train.config import DistributedConfig, OptimizerConfig


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.py"
    path.write_text(f"open({str(tmp_path / 'started')!r}, 'w').close()\n")
    return path


@pytest.mark.parametrize(("flags", "words"), [
    (["--rdzv-endpoint", "host"], ["--rdzv-endpoint", "HOST:PORT"]),
    (["--rdzv-endpoint", "host:99999"], ["--rdzv-endpoint"]),
    (["--rdzv-endpoint", ":29500"], ["--rdzv-endpoint"]),
    (["--nnodes", "2", "--rdzv-endpoint", "nosuch.invalid:29500"], ["--rdzv-endpoint", "resolves"]),
    (["--nnodes", "2"], ["--rdzv-endpoint"]),
    (["--rdzv-endpoint", "127.0.0.1:29500"], ["--rdzv-endpoint", "nnodes"]),  # one machine meets nobody
    (["--nproc", "0"], ["--nproc"]), (["--nproc", "two"], ["--nproc"]), (["--nnodes", "0"], ["--nnodes"]),
    (["--max-restarts", "-1"], ["--max-restarts"]), (["--job-id", ""], ["--job-id"]),
    (["--lr", "0"], ["--lr"]), (["--lr", "nan"], ["--lr"]), (["--lr", "-1e-3"], ["--lr"]),
    (["--optimizer", "Lion"], ["--optimizer", "optimizer_config.type"]),
    (["--strategy", "ring"], ["--strategy"]), (["--compression", "zip"], ["--compression"]),
    (["--gradient-accumulation", "0"], ["--gradient-accumulation"]),
    (["--precision", "fp8"], ["--precision"]),
])
def test_a_bad_flag_is_refused_before_any_process_starts(tmp_path, capsys, script, flags, words):
    refused(["train", script, *flags], capsys, all_of=words, unchanged=tmp_path)


def test_a_missing_script_or_a_folder_is_refused(tmp_path, capsys):
    refused(["train", tmp_path / "nope.py"], capsys, all_of=["SCRIPT", "an existing Python file"], unchanged=tmp_path)
    refused(["train", tmp_path], capsys, all_of=["SCRIPT", "not a folder"], unchanged=tmp_path)


def test_a_bad_checkpoint_path_is_refused_before_any_process_starts(tmp_path, capsys, script):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    for checkpoint in (taken, script, taken / "sub"):
        refused(["train", script, "--checkpoint-path", checkpoint], capsys, "--checkpoint-path", unchanged=tmp_path)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            refused(["train", script, "--checkpoint-path", locked / "ck"], capsys, "--checkpoint-path",
                    unchanged=tmp_path)
        finally:
            locked.chmod(0o700)
    assert taken.read_text() == "mine"


# -- the trainers name the Python argument ------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "match"), [
    ({"optimizer_config": {"lr": "fast"}}, r"^optimizer_config\.lr: "),
    ({"optimizer_config": {"lr": float("inf")}}, r"^optimizer_config\.lr: "),
    ({"optimizer_config": {"weight_decay": None}}, r"^optimizer_config\.weight_decay: "),
    ({"optimizer_config": {"betas": 5}}, r"^optimizer_config\.betas: "),
    ({"optimizer_config": {"type": ["SGD"]}}, r"^optimizer_config\.type: "),
    ({"optimizer_config": {"warmup_steps": "10"}}, r"^optimizer_config\.warmup_steps: "),
    ({"optimizer_config": "adam"}, "^optimizer_config: "),
    ({"distributed_config": {"sync_bn": "yes"}}, r"^distributed_config\.sync_bn: "),
    ({"distributed_config": {"strategy": ["ddp"]}}, "^strategy: "),
    ({"checkpoint_every": "often"}, "^checkpoint_every: "), ({"seed": -1}, "^seed: "), ({"seed": 1.5}, "^seed: "),
    ({"device": "gpu"}, "^device: "), ({"loss_fn": 5}, "^loss_fn: "), ({"callbacks": [5]}, "^callbacks: "),
    ({"batch_size": 0}, "^batch_size: "), ({"precision": "fp8"}, "^precision: "), ({"progress": "no"}, "^progress: "),
    ({"activation_checkpointing": "layer1"}, "^activation_checkpointing: "),
    ({"checkpoint_path": 5}, "^checkpoint_path: "),
])
def test_the_trainer_names_the_python_argument(options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DeepSeekTrainer(torch.nn.Linear(2, 2), **options)


def test_an_unwritable_checkpoint_path_is_refused_when_the_trainer_is_built(tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    with pytest.raises(InvalidArgumentError, match=r"^checkpoint_path: "):
        DeepSeekTrainer(torch.nn.Linear(2, 2), checkpoint_path=taken)
    with pytest.raises(InvalidArgumentError, match=r"^checkpoint_path: "):
        DistributedTrainer(checkpoint_path=taken / "sub")
    assert taken.read_text() == "mine"


@pytest.mark.parametrize(("options", "match"), [
    ({"strategy": "ring"}, "^strategy: "), ({"compression": 3}, "^compression: "),
    ({"keep_checkpoints": 0}, "^keep_checkpoints: "), ({"device": "tpu"}, "^device: "),
    ({"optimizer_config": {"lr": -1}}, r"^optimizer_config\.lr: "), ({"nosuch": 1}, "^DistributedTrainer: "),
    ({"precision": "fp16", "strategy": "fsdp"}, "^precision: "),
])
def test_the_distributed_trainer_names_the_python_argument(options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DistributedTrainer(**options)


def test_configs_refuse_wrong_types_naming_the_field():
    with pytest.raises(InvalidArgumentError, match=r"^optimizer_config\.gamma: "):
        OptimizerConfig.parse({"gamma": "x"})
    with pytest.raises(InvalidArgumentError, match=r"^distributed_config\.powersgd_rank: "):
        DistributedConfig.parse({"powersgd_rank": True})


def test_the_launcher_checks_its_options_without_importing_torch():
    """`deepseek train` validates and starts torchrun; torch is imported by the processes it starts, not by it."""
    code = ("import sys, argparse; from deepseek.train import launch; from deepseek.cli import train as launch_cli; p = argparse.ArgumentParser(); "
            "launch_cli.configure_parser(p); a = p.parse_args(['x.py', '--nproc', '2', '--strategy', 'zero1']); "
            "launch.trainer_defaults(strategy=a.strategy); launch.torchrun_command(sys.executable, nproc=a.nproc); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
