"""A throwaway Redis server on 127.0.0.1 from the local installation (Debian's ``redis-server``), for trying the
scaled-out pipeline on one machine, and for our tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .._core.errors import DeepSeekError, MissingDependencyError


class LocalRedis:
    """``with LocalRedis() as server:`` starts ``redis-server`` on a free port of 127.0.0.1 (no persistence, its
    files in a temporary folder); ``server.url`` is ``redis://127.0.0.1:PORT/0``; leaving stops it."""

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        self.startup_timeout = startup_timeout
        self.url = ""
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._root: Path | None = None

    def start(self) -> LocalRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise MissingDependencyError("Redis: redis-server is not installed (Debian: apt-get install redis-server)")
        self._root = Path(tempfile.mkdtemp(prefix="deepseek-redis-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        log = self._root / "redis.log"
        self._process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._root), "--logfile", str(log), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                detail = log.read_text()[-2000:] if log.exists() else ""
                self.stop()
                raise DeepSeekError(f"redis-server exited at start-up: {detail.strip() or 'no log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise DeepSeekError(f"redis-server did not answer on 127.0.0.1:{self.port} "
                                    f"within {self.startup_timeout} s")
            time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and delete its folder. Safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
