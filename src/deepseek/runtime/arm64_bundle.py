"""Run an arm64 bundle from ``deepseek-compile --target-arch arm64``: natively through its C ABI on an arm64
host, or elsewhere through the bundle's example runner under ``qemu-aarch64`` (for checking, not speed)."""

from __future__ import annotations

import ctypes
import json
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._core.errors import ArtifactError, DeepSeekError, MissingDependencyError, invalid
from .._core.tensors import to_numpy
from .backends import InputSpec

EM_AARCH64 = 183


def is_arm64_library(path: Path) -> bool:
    """An ELF shared object built for AArch64."""
    with open(path, "rb") as f:
        head = f.read(20)
    return head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == EM_AARCH64


class Arm64Backend:
    """The bundle's ``model_forward``; one float32 input and output of the shapes fixed at compile time."""

    name = "executorch"

    def __init__(self, path: Path, *, cpu: str = "cortex-a72") -> None:
        self.path = Path(path)
        self.bundle = self._find_bundle()
        meta = json.loads((self.bundle / f"{self.path.stem}.json").read_text())
        self._in_shape, self._out_shape = tuple(meta["input_shape"]), tuple(meta["output_shape"])
        self.input_specs = [InputSpec("input", self._in_shape, "float32")]
        self.artifact_bytes = self.path.stat().st_size
        self._native = platform.machine().lower() in ("aarch64", "arm64")
        self._cpu = cpu
        self._lib = None
        if self._native:
            self.device = "cpu"
            if meta.get("backend", "executorch") == "executorch":  # a TVM bundle runs through its runner
                self._lib = ctypes.CDLL(str(self.bundle / f"{self.path.stem}.so"))
                self._lib.model_forward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        else:
            if shutil.which("qemu-aarch64") is None:
                raise MissingDependencyError(f"{self.path} is an arm64 bundle; on this {platform.machine()} host it runs "
                                             "only under emulation: apt-get install qemu-user")
            self.device = f"qemu-aarch64 -cpu {cpu}"

    def _find_bundle(self) -> Path:
        for folder in (self.path.with_name(f"{self.path.stem}.bundle"), self.path.parent):
            if (folder / f"{self.path.stem}.json").is_file() and (folder / "run_model").is_file():
                return folder
        raise ArtifactError(f"model: {self.path} is an arm64 library without its bundle folder "
                            f"({self.path.stem}.bundle/ with {self.path.stem}.json, lib/ and run_model)")

    def run(self, args: tuple[Any, ...]) -> list[np.ndarray]:
        x = np.ascontiguousarray(to_numpy(args[0]), dtype=np.float32)
        if x.shape != self._in_shape:
            raise invalid("inputs", list(x.shape), f"shape {list(self._in_shape)} (fixed when the bundle was compiled)")
        return [self.run_stacked(x)]

    def run_stacked(self, x: Any) -> np.ndarray:
        """Outputs for many inputs at once: ``x`` holds k inputs of the compiled shape stacked along its first axis
        (k x batch rows); the outputs come back stacked the same way. Emulated, one runner process does them all."""
        x = np.ascontiguousarray(to_numpy(x), dtype=np.float32)
        batch, rest = self._in_shape[0], self._in_shape[1:]
        if x.shape[1:] != rest or not len(x) or len(x) % batch:
            raise invalid("inputs", list(x.shape), f"a multiple of {batch} rows of shape {list(rest)} (fixed when the "
                                                   "bundle was compiled)")
        k = len(x) // batch
        out = np.empty((k * self._out_shape[0], *self._out_shape[1:]), dtype=np.float32)
        if self._lib is not None:
            step = out.size // k
            for i in range(k):
                rc = self._lib.model_forward(x[i * batch:(i + 1) * batch].ctypes.data,
                                             out.ctypes.data + 4 * i * step, step)
                if rc != 0:
                    raise DeepSeekError(f"model_forward returned {rc}")
            return out
        emulate = [] if self._native else ["qemu-aarch64", "-cpu", self._cpu, "-L", "/usr/aarch64-linux-gnu"]
        with tempfile.TemporaryDirectory(prefix="deepseek-arm64-") as work:
            x.astype("<f4").tofile(Path(work) / "in.f32")
            done = subprocess.run([*emulate, str(self.bundle / "run_model"), str(Path(work) / "in.f32"),
                                   str(Path(work) / "out.f32")], capture_output=True, text=True)
            if done.returncode != 0:
                raise DeepSeekError(f"the bundle's runner failed{'' if self._native else ' under qemu'}: "
                                    f"{done.stderr.strip()[-300:]}")
            got = np.fromfile(Path(work) / "out.f32", dtype="<f4")
            if got.size != out.size:
                raise DeepSeekError(f"the bundle's runner wrote {got.size} values for {k} inputs, expected {out.size} "
                                    "(a bundle built before runners took several inputs: rebuild it)")
            return got.reshape(out.shape)
