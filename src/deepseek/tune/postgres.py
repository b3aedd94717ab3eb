"""A throwaway PostgreSQL server on 127.0.0.1 from the local installation (Debian's ``postgresql`` package), for
trying a database-backed study with several workers on one machine, and for our tests and benchmarks."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .._core.errors import MissingDependencyError


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a fresh cluster in a temporary folder; yield its SQLAlchemy URL
    (``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``); stop it and delete the folder afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise MissingDependencyError("PostgreSQL: not installed (Debian: apt-get install postgresql)")
    bindir = os.path.dirname(found[-1])
    # under /tmp and owned by postgres: the server refuses to run as root, and must reach its folder
    root = Path(tempfile.mkdtemp(prefix="deepseek-pg-"))
    data = root / "data"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        for path in (root, data):
            shutil.chown(path, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True)
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
