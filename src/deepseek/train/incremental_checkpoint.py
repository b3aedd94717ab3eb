"""Incremental checkpoints: each save writes only the tensor chunks that changed since the last one.

A store is a folder: ``chunks/<hh>/<hash>`` holds raw tensor bytes addressed by their XXH3-128 hash (so equal
content is written once, whichever tensor or step it belongs to), and ``manifests/step_<N>.json`` maps every
tensor of step N to its dtype, shape and chunk hashes, with the rest of the state (numbers, strings, nesting) as
JSON. A manifest is written last, atomically, so a step is complete exactly when its manifest exists; a crash
mid-save leaves only unreferenced chunks, which :meth:`IncrementalCheckpointer.collect_garbage` removes.

Finding what changed: every tensor is read and hashed on every save (XXH3 runs at ~15 GB/s on one core, so a
500 MB model costs tens of milliseconds) and only chunks not already in the store are written — no reliance on
autograd's version counters, which writes through ``.data`` do not bump. Every ``full_every``-th save also reads back
each chunk it references and rewrites any whose content no longer matches its hash. Loading checks every
chunk's hash: a missing or corrupt chunk is an error naming the tensor. No pickle anywhere: tensors are raw bytes,
everything else JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._core.checks import check_int, check_number
from .._core.errors import ArtifactError, invalid
from .state_tree import join_tensors, split_tensors

FORMAT = "deepseek.incremental/1"
_STEP = "step_"

_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8,
    torch.uint8, torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2)}


@dataclasses.dataclass(frozen=True)
class SaveStats:
    """What one save did: tensors and bytes in the state, chunks and bytes actually written, seconds taken."""

    step: int
    full: bool
    tensors: int
    state_bytes: int
    chunks_written: int
    bytes_written: int
    seconds: float


class IncrementalCheckpointer:
    """Save and load nested training state (``{"model": state_dict, "optimizer": ..., "step": 3}``) into an
    incremental, content-addressed store at ``root``; the newest ``keep`` steps are kept. ``sync_files`` flushes
    every file to disk before the manifest names it (as DCP's writer does by default)."""

    def __init__(self, root: str | Path, *, chunk_mb: float = 4.0, full_every: int = 10, keep: int = 3,
                 sync_files: bool = True) -> None:
        check_number(chunk_mb, "chunk_mb", above=0, maximum=1024, expected="a chunk size in MiB in (0, 1024]")
        for name, value in (("full_every", full_every), ("keep", keep)):
            check_int(value, name, minimum=1)
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise invalid("root", str(root), "a folder (or a path to create one)")
        self.chunk_bytes = max(1, int(chunk_mb * 2**20))
        self.full_every, self.keep, self.sync_files = full_every, keep, bool(sync_files)
        self._saves = 0

    # -- saving ------------------------------------------------------------------------------------------------
    def save(self, step: int, state: Mapping[str, Any], *, full: bool | None = None) -> SaveStats:
        """Write ``state`` as ``step``; ``full`` forces (or skips) re-checking every referenced chunk on disk
        (default: every ``full_every``-th save, the first included)."""
        step = check_int(step, "step", minimum=0)
        if not isinstance(state, Mapping):
            raise invalid("state", type(state).__name__, "a mapping of names to tensors, numbers, strings, lists, dicts")
        t0 = time.perf_counter()
        full = (self._saves % self.full_every == 0) if full is None else bool(full)
        tensors: dict[str, torch.Tensor] = {}
        try:
            skeleton = split_tensors(dict(state), "", tensors)
        except TypeError as e:
            raise invalid("state", str(e), "tensors, numbers, strings, lists and dicts only") from None
        chunks_dir = self.root / "chunks"
        chunks_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "manifests").mkdir(exist_ok=True)
        entries, written, written_bytes, state_bytes = {}, 0, 0, 0
        seen_now: set[str] = set()
        for name, tensor in tensors.items():
            if tensor.is_sparse or tensor.layout != torch.strided:
                raise invalid(f"state[{name!r}]", f"a {tensor.layout} tensor", "a dense (strided) tensor")
            dtype = str(tensor.dtype).removeprefix("torch.")
            if dtype not in _DTYPES:
                raise invalid(f"state[{name!r}]", tensor.dtype, f"one of {sorted(_DTYPES)}")
            nbytes = tensor.numel() * tensor.element_size()
            state_bytes += nbytes
            hashes = []
            data = _bytes_of(tensor)
            for start in range(0, max(1, nbytes), self.chunk_bytes):
                piece = data[start:start + self.chunk_bytes]
                digest = _hash(piece)
                hashes.append(digest)
                if digest in seen_now:
                    continue
                seen_now.add(digest)
                path = _chunk_path(chunks_dir, digest)
                if not path.exists() or (full and _hash(_read(path)) != digest):
                    _write_atomically(path, piece, self.sync_files)
                    written += 1
                    written_bytes += len(piece)
            entries[name] = {"dtype": dtype, "shape": list(tensor.shape), "nbytes": nbytes, "chunks": hashes}
        manifest = {"format": FORMAT, "step": step, "full": full, "chunk_bytes": self.chunk_bytes,
                    "tensors": entries, "state": skeleton}
        _write_atomically(self._manifest(step), json.dumps(manifest).encode(), self.sync_files)
        self._saves += 1
        self._prune()
        return SaveStats(step=step, full=full, tensors=len(tensors), state_bytes=state_bytes,
                         chunks_written=written, bytes_written=written_bytes, seconds=time.perf_counter() - t0)

    # -- loading -----------------------------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """The complete steps in the store, oldest first."""
        folder = self.root / "manifests"
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob(f"{_STEP}*.json"):
            try:
                found.append(int(path.stem.removeprefix(_STEP)))
            except ValueError:
                continue
        return sorted(found)

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def load(self, step: int | None = None, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The state saved as ``step`` (default: the newest), every chunk checked against its hash."""
        if step is None:
            step = self.latest()
            if step is None:
                raise ArtifactError(f"checkpoint: no complete step in {self.root} (no manifests/{_STEP}*.json)")
        manifest = self._read_manifest(step)
        tensors = {}
        for name, entry in manifest["tensors"].items():
            dtype = _DTYPES.get(entry.get("dtype"))
            if dtype is None:
                raise ArtifactError(f"checkpoint step {step}: tensor {name!r} has an unknown dtype {entry.get('dtype')!r}")
            buffer = bytearray(entry["nbytes"])
            offset = 0
            for digest in entry["chunks"]:
                path = _chunk_path(self.root / "chunks", digest)
                try:
                    piece = path.read_bytes()
                except OSError:
                    raise ArtifactError(f"checkpoint step {step}: tensor {name!r} is missing chunk {digest} "
                                        f"({path})") from None
                if _hash(piece) != digest:
                    raise ArtifactError(f"checkpoint step {step}: tensor {name!r} has a corrupt chunk {digest} "
                                        f"({path}: its content does not match its hash)")
                buffer[offset:offset + len(piece)] = piece
                offset += len(piece)
            if offset != entry["nbytes"]:
                raise ArtifactError(f"checkpoint step {step}: tensor {name!r} holds {offset} bytes, its manifest "
                                    f"says {entry['nbytes']}")
            flat = torch.frombuffer(buffer, dtype=torch.uint8) if entry["nbytes"] else torch.empty(0, dtype=torch.uint8)
            tensors[name] = flat.view(dtype).reshape(entry["shape"]).to(map_location)
        return join_tensors(manifest["state"], tensors)

    # -- housekeeping ------------------------------------------------------------------------------------------
    def collect_garbage(self) -> int:
        """Delete the chunks no kept manifest references (and leftovers of interrupted writes); the bytes freed."""
        entries = [entry for step in self.steps() for entry in self._read_manifest(step)["tensors"].values()]
        referenced = {digest for entry in entries for digest in entry["chunks"]}
        freed = 0
        chunks_dir = self.root / "chunks"
        if not chunks_dir.is_dir():
            return 0
        for path in chunks_dir.glob("*/*"):
            if path.name not in referenced:
                freed += path.stat().st_size
                path.unlink()
        return freed

    def store_bytes(self) -> int:
        """Bytes the store holds on disk (chunks and manifests)."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def _prune(self) -> None:
        steps = self.steps()
        if len(steps) > self.keep:
            for step in steps[:-self.keep]:
                self._manifest(step).unlink(missing_ok=True)
            self.collect_garbage()

    def _manifest(self, step: int) -> Path:
        return self.root / "manifests" / f"{_STEP}{step:08d}.json"

    def _read_manifest(self, step: int) -> dict[str, Any]:
        path = self._manifest(step)
        try:
            manifest = json.loads(path.read_text())
        except OSError:
            raise ArtifactError(f"checkpoint: step {step} is not in {self.root} (no {path.name})") from None
        except json.JSONDecodeError as e:
            raise ArtifactError(f"checkpoint: {path} is not valid JSON ({e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArtifactError(f"checkpoint: {path} is not a {FORMAT} manifest")
        return manifest


def _hash(data: Any) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def _bytes_of(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy()).cast("B")


def _chunk_path(folder: Path, digest: str) -> Path:
    return folder / digest[:2] / digest


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _write_atomically(path: Path, data: Any, sync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
