"""Run a training script on N processes under torchrun: :func:`launch` (``deepseek train SCRIPT --nproc N``).

The trainer options become the defaults of every :class:`DistributedTrainer` the script creates (its own arguments
win), so a bad strategy, optimizer or accumulation is reported here, before any process starts. Workers that
die are restarted by torchrun (``max_restarts``) and resume from the newest complete checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_int
from .._core.errors import invalid
from .config import LAUNCH_ENV, PRECISIONS, DistributedConfig, OptimizerConfig

RESOLVE_TIMEOUT_S = 5.0


def trainer_defaults(*, strategy: str | None = None, compression: str | None = None, optimizer: str | None = None,
                     lr: float | None = None, gradient_accumulation: int | None = None, sync_bn: bool | None = None,
                     precision: str | None = None, checkpoint_path: str | Path | None = None,
                     script: str | Path | None = None) -> dict[str, Any]:
    """The validated defaults handed to the script's trainers (raises on a bad value, naming the configuration
    field, e.g. ``optimizer_config.type``); ``None`` leaves the trainer's own default. ``script`` is never
    overwritten by a ``checkpoint_path`` that names it."""
    from .._core.atomic import check_output

    optimizer_options = {k: v for k, v in (("type", optimizer), ("lr", lr)) if v is not None}
    distributed = {k: v for k, v in (("strategy", strategy), ("compression", compression),
                                     ("gradient_accumulation", gradient_accumulation),
                                     ("sync_bn", sync_bn)) if v is not None}
    OptimizerConfig.parse(optimizer_options)
    DistributedConfig.parse(distributed)
    config: dict[str, Any] = {"optimizer_config": optimizer_options, "distributed_config": distributed}
    if precision is not None:
        check_choice(precision, "precision", PRECISIONS, expected=f"one of {PRECISIONS}")
        config["precision"] = precision
    if checkpoint_path:
        # every process writes there: a file in the way or an unwritable place is refused before any starts
        check_output(checkpoint_path, argument="checkpoint_path", inputs=[script] if script else [], folder=True)
        config["checkpoint_path"] = str(checkpoint_path)
    return config


def valid_endpoint(text: Any) -> bool:
    """Whether ``text`` is ``HOST:PORT`` with a port 1-65535 (IPv6 hosts in brackets, ``[::1]:29500``)."""
    if not isinstance(text, str) or any(c.isspace() for c in text):
        return False
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 1 <= int(port) <= 65535)


def check_endpoint(endpoint: str, *, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
    """Refuse a rendezvous ``HOST:PORT`` whose host does not resolve within ``timeout_s`` (torchrun would retry it
    for minutes, then fail with a C++ stack)."""
    import socket
    import threading

    host, _, port = endpoint.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    outcome: dict[str, Any] = {}

    def resolve() -> None:
        try:
            outcome["addresses"] = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise invalid("rdzv_endpoint", endpoint, f"a host that resolves (no answer for {host!r} within "
                                                   f"{timeout_s:g} s)")
    if "error" in outcome:
        exc = outcome["error"]
        reason = getattr(exc, "strerror", None) or str(exc)
        raise invalid("rdzv_endpoint", endpoint, f"a host that resolves ({host!r}: {reason})")


def torchrun_command(script: str | Path, *, nproc: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None,
                     job_id: str = "deepseek", max_restarts: int = 3, script_args: Sequence[str] = ()) -> list[str]:
    """The ``python -m torch.distributed.run`` command line that runs ``script`` (with ``script_args``) on ``nproc``
    processes per machine, ``nnodes`` machines meeting at ``rdzv_endpoint`` (``HOST:PORT``), after checking them."""
    path = Path(script)
    if not path.is_file():
        raise invalid("script", str(script), "an existing Python file" if not path.exists() else
                      "an existing Python file, not a folder")
    for name, value, minimum in (("nproc", nproc, 1), ("nnodes", nnodes, 1), ("max_restarts", max_restarts, 0)):
        check_int(value, name, minimum=minimum)
    if not isinstance(job_id, str) or not job_id or any(c.isspace() for c in job_id):
        raise invalid("job_id", job_id, "a non-empty id without spaces")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
               f"--max-restarts={max_restarts}"]
    if nnodes == 1:
        if rdzv_endpoint:
            raise invalid("rdzv_endpoint", rdzv_endpoint, "nothing with nnodes 1 (one machine meets itself); give "
                                                          "nnodes N for a job of N machines")
        command.append("--standalone")
    else:
        if not rdzv_endpoint:
            raise invalid("rdzv_endpoint", None, "HOST:PORT of the first machine when nnodes > 1")
        if not valid_endpoint(rdzv_endpoint):
            raise invalid("rdzv_endpoint", rdzv_endpoint, "HOST:PORT with a port 1-65535, e.g. 10.0.0.1:29500")
        command += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
                    f"--rdzv-id={job_id}"]
    return [*command, str(path), *script_args]


def launch(script: str | Path, *, nproc: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None,
           job_id: str = "deepseek", max_restarts: int = 3, script_args: Sequence[str] = (),
           **trainer_options: Any) -> int:
    """Run ``script`` under torchrun (see :func:`torchrun_command`) with ``trainer_options`` (those of
    :func:`trainer_defaults`: ``strategy``, ``compression``, ``optimizer``, ``lr``, ``gradient_accumulation``,
    ``sync_bn``, ``precision``, ``checkpoint_path``) as its trainers' defaults; everything is checked before any
    process starts. Returns torchrun's exit status."""
    allowed = set(trainer_defaults.__kwdefaults__) - {"script"}  # the script is launch()'s own first argument
    unknown = sorted(set(trainer_options) - allowed)
    if unknown:
        raise invalid("trainer_options", unknown, "options of trainer_defaults() (strategy, compression, optimizer, "
                                                  "lr, gradient_accumulation, sync_bn, precision, checkpoint_path)")
    command = torchrun_command(script, nproc=nproc, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint, job_id=job_id,
                               max_restarts=max_restarts, script_args=script_args)
    config = trainer_defaults(**trainer_options, script=script)
    if nnodes > 1:
        check_endpoint(rdzv_endpoint)
    env = {**os.environ, LAUNCH_ENV: json.dumps(config)}
    return subprocess.run(command, env=env, check=False).returncode
