"""DistributedTrainer end to end: real processes under torchrun (Gloo), on scikit-learn's real digits."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import deepseek
from deepseek.train import DistributedConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_cnn.py"
DEEPSEEK = [sys.executable, "-m", "deepseek"]
COMMON = ["--dataset", "digits", "--epochs", "1", "--dropout", "0"]


def _launch(tmp: Path, nproc: int, options: list[str], runs: dict[str, list[str]]) -> dict[str, dict]:
    """One `deepseek train` job whose processes train each of ``runs`` in turn (train_cnn.py's ``--then``: one
    interpreter start-up per process for all of them); the metrics and weights of each, by name."""
    command = [*DEEPSEEK, "train", str(SCRIPT), "--nproc", str(nproc), *options, "--", *_script_args(tmp, runs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: _read(tmp / name) for name in runs}


def _script_args(tmp: Path, runs: dict[str, list[str]]) -> list[str]:
    (first, args), *more = runs.items()
    script = [*args, "--out", str(tmp / first)]
    for name, args in more:
        script += ["--then", shlex.join([*args, "--out", str(tmp / name)])]
    return script


def _read(out: Path) -> dict:
    result = json.loads((out / "metrics.json").read_text())
    result["weights"] = load_file(str(out / "weights.safetensors"))
    return result


# the uninterrupted run the killed-worker test ends like: dropout on (the restart must restore the random state),
# a checkpoint every step
RESTARTABLE = ["--dataset", "digits", "--epochs", "2", "--batch-size", "32", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """One process with the whole global batch (64) and two processes with half each, per strategy.

    The equivalence runs train in float64. In float32 the two runs differ by rounding alone (sums over the batch
    and over processes taken in another order: ~1e-6 of the first step's gradients), and AdamW, which divides
    every element by its own gradient's RMS, turns that noise into lr-sized steps for elements whose gradient is
    near the rounding floor: after 23 steps the weights differed by 3e-3 on AMD EPYC and 2.5e-5 on Intel Xeon,
    which no fixed float32 tolerance separates from a real bug. In float64 they agree to ~1e-14.

    Two jobs (one of 1 process, one of 2) train all of them in turn: most of a job is interpreter start-up and
    imports. Each job's first run takes its options from `deepseek train`, the others from the script's own
    options, which win over the launcher's.
    """
    tmp = tmp_path_factory.mktemp("dist")
    exact = [*COMMON, "--float64"]
    float32 = [*COMMON, "--no-float64", "--no-sync-bn", "--batch-size", "32"]
    one = {  # 2 micro-batches per step: 1 x 32 vs 2 x 16 (BatchNorm sees 32 samples either way)
        "one_accumulation": [*exact, "--batch-size", "32"],
        "one": [*exact, "--batch-size", "64", "--gradient-accumulation", "1"],
    }
    two = {
        "ring": [*exact, "--batch-size", "32"],
        "zero1": ["--strategy", "zero1"],
        "fsdp": ["--strategy", "fsdp"],
        "accumulation": ["--gradient-accumulation", "2", "--batch-size", "16"],
        "no_sync_bn": ["--no-sync-bn"],
        "fp16": [*float32, "--compression", "fp16"],
        "powersgd": [*float32, "--compression", "powersgd"],
        "2bit": [*float32, "--compression", "2bit"],
        "straight": [*RESTARTABLE, "--dropout", "0.1", "--no-float64", "--no-sync-bn",
                     "--checkpoint-path", str(tmp / "ck_straight")],
    }
    # the two jobs at once, one core each; the results do not depend on timing
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(_launch, tmp, 1, ["--gradient-accumulation", "2"], one),
                pool.submit(_launch, tmp, 2, ["--sync-bn"], two)]
        return {name: result for job in jobs for name, result in job.result().items()}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_two_nodes(tmp: Path, options: list[str], runs: dict[str, list[str]]) -> dict[str, dict]:
    """Two "machines" of two processes each: two `deepseek train --nnodes 2` launches meeting at one rendezvous
    endpoint, as on a real cluster (torchrun gives each its own LOCAL_WORLD_SIZE and consecutive ranks). The
    processes train each of ``runs`` in turn, as in `_launch`."""
    endpoint = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = _script_args(tmp, runs)
    launches = [subprocess.Popen([*DEEPSEEK, "train", str(SCRIPT), "--nproc", "2", "--nnodes", "2",
                                  "--rdzv-endpoint", endpoint, "--job-id", "nodes", *options, "--", *script],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
                for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in launches]
    for launch, (_, err) in zip(launches, outputs, strict=True):
        assert launch.returncode == 0, err[-3000:]
    return {name: _read(tmp / name) for name in runs}


@pytest.fixture(scope="module")
def node_runs(tmp_path_factory) -> dict[str, dict]:
    """Hierarchical all-reduce and HSDP, each on 2 "nodes" x 2 processes x 16 samples (the flat all-reduce's
    equality with one process is the `ring` run's test; benchmarks/bench_distributed.py also runs it on 2 nodes)."""
    args = [*COMMON, "--float64", "--batch-size", "16"]
    return _run_two_nodes(tmp_path_factory.mktemp("nodes"), ["--sync-bn", "--strategy", "hierarchical"],
                          {"hierarchical": args, "hsdp": ["--strategy", "hsdp"]})


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# float64 rounding (~1e-16 relative) amplified over 23 AdamW steps stays below 1e-12 (measured ~3e-14); any
# semantic difference (BatchNorm statistics over half the batch, a gradient scaled by 1/2 or 2 — AdamW is
# scale-invariant only up to eps/RMS ~1e-5) is orders of magnitude above this bound
EXACT = 1e-9


@pytest.mark.parametrize(("baseline", "strategy"), [("one", "ring"), ("one", "zero1"), ("one", "fsdp"),
                                                     ("one_accumulation", "accumulation")])
def test_two_processes_with_sync_bn_train_exactly_like_one_with_the_global_batch(runs, baseline, strategy):
    one, two = runs[baseline], runs[strategy]
    assert two["world_size"] == 2 and one["world_size"] == 1 and two["steps"] == one["steps"]
    # same batches, same gradients (DDP/ZeRO/FSDP average over processes), BatchNorm statistics over both
    # processes' samples: weights and running statistics agree to float64 rounding
    assert _max_diff(one["weights"], two["weights"]) < EXACT
    assert abs(one["history"][-1]["eval_accuracy"] - two["history"][-1]["eval_accuracy"]) <= 1e-9
    assert one["history"][-1]["eval_accuracy"] > 0.85


@pytest.mark.parametrize("strategy", ["hierarchical", "hsdp"])
def test_two_nodes_of_two_processes_train_exactly_like_one_process(runs, node_runs, strategy):
    """Hierarchical all-reduce and HSDP give the single process's result — as the flat all-reduce does (the
    `ring` runs) — to float64 rounding, across two launches that meet at one rendezvous like two machines."""
    one, four = runs["one"], node_runs[strategy]
    assert four["world_size"] == 4 and four["strategy"] == strategy and four["steps"] == one["steps"]
    assert _max_diff(one["weights"], four["weights"]) < EXACT
    assert _max_diff(runs["ring"]["weights"], four["weights"]) < EXACT


def test_hierarchical_all_reduce_sends_only_the_leaders_bytes_across_nodes(runs, node_runs):
    hierarchical = node_runs["hierarchical"]
    payload = 8 * sum(v.numel() for k, v in runs["one"]["weights"].items()
                      if "running" not in k and "num_batches" not in k)  # float64 gradients, one bucket
    assert hierarchical["bytes_allreduced"] == payload * hierarchical["steps"]
    # a flat all-reduce hands all four processes' payloads to collectives spanning the nodes; here only the two
    # leaders' cross them
    assert hierarchical["job_bytes_internode"] == 2 * payload * hierarchical["steps"]
    assert hierarchical["job_bytes_allreduced"] == 4 * payload * hierarchical["steps"]


def test_without_sync_bn_two_processes_differ_from_one(runs):
    """The control for the test above: each process normalizing its own 32 samples is not the 64-sample batch."""
    assert _max_diff(runs["one"]["weights"], runs["no_sync_bn"]["weights"]) > 1e3 * EXACT


def _direct_gradients(samples: int, micro_batch: int) -> dict[str, torch.Tensor]:
    """The gradient of one large batch computed by hand: the epoch's first ``samples`` (in the trainer's seeded
    order) cut into micro-batches of ``micro_batch`` samples, BatchNorm statistics per micro-batch, the loss summed
    over every sample and divided by their number."""
    sys.path.insert(0, str(SCRIPT.parent))
    from train_cnn import cnn, data

    train, _ = data("digits", samples)
    model = cnn(1, 8, dropout=0.0).double().train()
    order = torch.randperm(samples, generator=torch.Generator().manual_seed(0))  # seed + epoch 0
    loss = sum(torch.nn.functional.cross_entropy(model(train.x[idx].double()), train.y[idx], reduction="sum")
               for idx in torch.split(order, micro_batch)) / samples
    loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("nproc", [1, 2])
def test_the_first_step_applies_the_gradient_of_the_whole_accumulated_batch(tmp_path, nproc):
    """80 samples in 3 micro-steps of 32, 32 and 16 (the last short) across ``nproc`` processes with sync BN: the
    gradient the optimizer gets equals the direct float64 computation. This fails if the loss weighting, the
    averaging over processes or the BatchNorm statistics are wrong, including in ways one and two processes share."""
    out = tmp_path / "grads.pt"
    command = [*DEEPSEEK, "train", str(Path(__file__).parent / "_first_step.py"), "--nproc", str(nproc), "--sync-bn",
               "--gradient-accumulation", "3", "--", "--samples", "80", "--batch-size", str(32 // nproc),
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = torch.load(out, weights_only=True), _direct_gradients(80, 32)
    assert got.keys() == want.keys()
    for name in want:
        scale = float(want[name].abs().max())
        assert float((got[name] - want[name]).abs().max()) <= 1e-12 * scale, name


def test_fp16_compression_sends_two_bytes_per_gradient_element_and_keeps_accuracy(runs):
    n_params = sum(v.numel() for k, v in runs["one"]["weights"].items() if "running" not in k and "num_batches" not in k)
    # every gradient element once per step: 8 bytes in the float64 runs, 2 with fp16 compression (float32 run)
    assert runs["ring"]["bytes_allreduced"] == 8 * n_params * runs["ring"]["steps"]
    assert runs["fp16"]["bytes_allreduced"] == 2 * n_params * runs["fp16"]["steps"]
    assert abs(runs["fp16"]["history"][-1]["eval_accuracy"] - runs["one"]["history"][-1]["eval_accuracy"]) <= 0.02


def test_accumulation_all_reduces_once_per_optimizer_step(runs):
    two = runs["accumulation"]
    assert two["allreduce_calls"] == two["steps"] == runs["one"]["steps"]  # no_sync on the first micro-batch
    assert two["bytes_allreduced"] == runs["ring"]["bytes_allreduced"]


def test_powersgd_sends_fewer_bytes_than_fp16(runs):
    assert runs["powersgd"]["bytes_allreduced"] < runs["fp16"]["bytes_allreduced"]
    assert runs["powersgd"]["history"][-1]["eval_accuracy"] > 0.8


def test_2bit_compression_sends_a_quarter_byte_per_element_and_still_learns(runs):
    n_params = sum(v.numel() for k, v in runs["one"]["weights"].items() if "running" not in k and "num_batches" not in k)
    two = runs["2bit"]
    # per bucket and step: ceil(n / 4) bytes of codes and a 4-byte scale (the CNN's gradients fit one bucket)
    per_step = two["bytes_allreduced"] / two["steps"]
    assert two["allreduce_calls"] == two["steps"]
    assert (n_params + 3) // 4 + 4 == per_step
    assert per_step < runs["fp16"]["bytes_allreduced"] / runs["fp16"]["steps"] / 7.9
    # one epoch on digits: stochastic 2-bit gradients with error feedback still learn (fp16 reaches ~0.9 here)
    assert two["history"][-1]["eval_accuracy"] > 0.7


def test_a_killed_worker_restarts_and_the_run_ends_where_an_uninterrupted_one_does(runs, tmp_path):
    straight = runs["straight"]
    log = tmp_path / "steps.txt"
    killed = _launch(tmp_path, 2, ["--checkpoint-path", str(tmp_path / "ck_killed")],
                     {"killed": [*RESTARTABLE, "--die-at-step", "12", "--step-log", str(log)]})["killed"]
    assert _max_diff(straight["weights"], killed["weights"]) == 0.0
    resumed = killed["resumed_from"]
    assert resumed is not None and 1 <= resumed <= 12
    attempts: dict[int, list[int]] = {}
    for line in log.read_text().split("\n"):
        if line:
            attempt, step = map(int, line.split())
            attempts.setdefault(attempt, []).append(step)
    assert attempts[0] == list(range(1, 13))  # the first attempt died after step 12
    # the restart continues right after the newest complete checkpoint: none skipped, none taken twice
    assert attempts[1] == list(range(resumed + 1, straight["steps"] + 1))
    assert killed["steps"] == straight["steps"]
    complete = sorted(p.name for p in (tmp_path / "ck_killed").iterdir() if (p / ".metadata").is_file())
    assert len(complete) == 2  # only the newest two are kept


@pytest.mark.parametrize(("config", "match"), [
    ({"strategy": "ring"}, "strategy"), ({"compression": "zip"}, "compression"),
    ({"gradient_accumulation": 0}, "gradient_accumulation"), ({"strategy": "fsdp", "compression": "powersgd"}, "powersgd"),
    ({"strategy": "fsdp", "compression": "2bit"}, "2bit"), ({"strategy": "hsdp", "compression": "2bit"}, "2bit"),
    ({"strategy": "hierarchical", "compression": "fp16"}, "compression"),
    ({"processes_per_node": 0}, "processes_per_node"),
])
def test_bad_distributed_config_is_refused(config, match):
    with pytest.raises(deepseek.InvalidArgumentError, match=match):
        DistributedConfig.parse(config)


def test_lightning_and_deepspeed_strategy_names_map_to_ours():
    assert DistributedConfig.parse({"strategy": "ddp"}).strategy == "ring_allreduce"
    assert DistributedConfig.parse({"strategy": "deepspeed_stage_1"}).strategy == "zero1"
    assert DistributedConfig.parse({"compression": "none"}).compression is None


@pytest.mark.parametrize(("options", "match"), [
    (["--strategy", "ring"], "strategy"), (["--optimizer", "Lion"], "optimizer_config.type"),
    (["--gradient-accumulation", "0"], "--gradient-accumulation"), (["--nproc", "0"], "--nproc"),
])
def test_deepseek_train_refuses_bad_config_before_any_process_starts(tmp_path, options, match):
    marker = tmp_path / "started"
    script = tmp_path / "script.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    done = subprocess.run([*DEEPSEEK, "train", str(script), *options], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and match in done.stderr
    assert "Traceback" not in done.stderr and not marker.exists()


def test_deepseek_train_refuses_a_missing_script(tmp_path):
    done = subprocess.run([*DEEPSEEK, "train", str(tmp_path / "nope.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "an existing Python file" in done.stderr


def test_multi_machine_command_names_the_rendezvous():
    from deepseek.train.launch import launch, torchrun_command

    options = {"nproc": 4, "nnodes": 2, "rdzv_endpoint": "10.0.0.1:29500", "job_id": "j", "max_restarts": 2,
               "script_args": ["--epochs", "3"]}
    command = torchrun_command(SCRIPT, **options)
    assert "--nnodes=2" in command and "--rdzv-endpoint=10.0.0.1:29500" in command
    assert command[-3:] == [str(SCRIPT), "--epochs", "3"] and "--standalone" not in command
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^rdzv_endpoint: "):
        torchrun_command(SCRIPT, **{**options, "rdzv_endpoint": None})
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^trainer_options: "):
        launch(SCRIPT, nproc=1, stratgy="zero1")  # a misspelt trainer option: refused before torchrun starts
    with pytest.raises(deepseek.InvalidArgumentError, match=r"^optimizer_config\.type: "):
        launch(SCRIPT, nproc=1, optimizer="Lion")


def test_two_launchers_meet_at_a_rendezvous_like_two_machines(tmp_path):
    """Two `deepseek train --nnodes 2` agents (as on two machines) form one job of two processes."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agents = [subprocess.Popen([*DEEPSEEK, "train", str(SCRIPT), "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint",
                                f"127.0.0.1:{port}", "--max-restarts", "0", "--", *COMMON, "--limit", "256",
                                "--out", str(tmp_path / f"node{i}")], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [agent.communicate(timeout=300)[1] for agent in agents]
    assert all(agent.returncode == 0 for agent in agents), errors[0][-2000:] + errors[1][-2000:]
    written = [json.loads(p.read_text()) for p in tmp_path.glob("node*/metrics.json")]
    assert len(written) == 1 and written[0]["world_size"] == 2  # rank 0 of the two-process job wrote it


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def test_without_a_launcher_it_is_a_group_of_one_and_resumes_from_its_checkpoint(tmp_path):
    import torch.distributed as dist

    from deepseek import assets

    train, test = assets.digits().split(0.2, seed=0)
    options = {"optimizer_config": {"lr": 3e-3}, "batch_size": 64, "progress": False, "precision": "fp32",
               "checkpoint_path": tmp_path, "strategy": "zero1", "compression": "bf16"}
    first = deepseek.DistributedTrainer(**options)
    first.fit(train, epochs=1, eval_data=test, model=_mlp())
    n_params = sum(p.numel() for p in first._module.parameters())
    assert first.world_size == 1 and first.comm_stats.bytes_allreduced == 2 * n_params * first.step  # bf16
    steps = first.step
    first.close()
    assert not dist.is_initialized()  # the trainer made the group, so it removed it
    second = deepseek.DistributedTrainer(**options)
    history = second.fit(train, epochs=2, eval_data=test, model=_mlp())
    assert second.resumed_from == steps and second.step == 2 * steps and len(history) == 2
    assert history[-1]["eval_accuracy"] > history[0]["eval_accuracy"] > 0.5  # learning (chance is 0.1)
    second.close()


def test_launcher_options_are_defaults_the_script_overrides(monkeypatch):
    from deepseek.train.distributed import LAUNCH_ENV

    monkeypatch.setenv(LAUNCH_ENV, json.dumps({"distributed_config": {"strategy": "fsdp", "sync_bn": True},
                                               "optimizer_config": {"type": "SGD", "lr": 0.5}}))
    trainer = deepseek.DistributedTrainer(optimizer_config={"lr": 0.1}, compression="bf16")
    assert trainer.dist.strategy == "fsdp" and trainer.dist.sync_bn and trainer.dist.compression == "bf16"
    assert trainer.optim.type == "SGD" and trainer.optim.lr == 0.1
    with pytest.raises(deepseek.InvalidArgumentError, match="precision"):
        deepseek.DistributedTrainer(precision="fp16")  # fsdp from the launcher: fp16 loss scaling refused
    with pytest.raises(deepseek.InvalidArgumentError, match="model"):
        trainer.fit(torch.zeros(4, 64), epochs=1)
