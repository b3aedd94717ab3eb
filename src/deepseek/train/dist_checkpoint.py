"""Sharded, asynchronous checkpoints with torch.distributed.checkpoint (DCP), readable without unpickling code.

Each save is a folder ``step_<N>`` that every process writes its shards into; DCP writes the folder's
``.metadata`` last, so a folder with it is complete and one without (a worker died mid-save) is ignored.
Only tensors go into DCP: everything else (step counters, history, hyper-parameters) travels as JSON inside a
uint8 tensor, so loading never needs ``pickle`` for data, and DCP's own ``.metadata`` is read with an
unpickler that admits only DCP's metadata classes.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.filesystem import FileSystemReader
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from .._core.errors import ArtifactError

META = "__meta__"
_PREFIX = "step_"

# the classes a DCP .metadata file legitimately holds (checked against torch 2.x files)
_ALLOWED = {("torch.distributed.checkpoint.metadata", name) for name in (
    "Metadata", "MetadataIndex", "StorageMeta", "TensorProperties", "TensorStorageMetadata",
    "BytesStorageMetadata", "ChunkStorageMetadata", "_MEM_FORMAT_ENCODING")} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"), ("torch.distributed.checkpoint.filesystem",
                                                                   "_StoragePrefix"),
    ("torch.serialization", "_get_layout"), ("torch", "Size"), ("pathlib", "PosixPath"), ("pathlib", "Path"),
    ("collections", "OrderedDict")}


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a DCP checkpoint's metadata")


class _SafeReader(FileSystemReader):
    """DCP's file reader, with the metadata read by an allow-list unpickler instead of ``pickle.load``."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        path = Path(self.path) / ".metadata"
        try:
            with open(path, "rb") as f:
                metadata = _MetadataUnpickler(f).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as e:
            raise ArtifactError(f"checkpoint: {path} is not a DCP checkpoint's metadata ({e})") from e
        if getattr(metadata, "storage_meta", None) is not None:
            metadata.storage_meta.load_id = self.load_id
        return metadata


# -- tensors <-> DCP items, everything else <-> JSON ---------------------------------------------------------
def _encode(meta: dict[str, Any]) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(meta).encode()), dtype=torch.uint8).clone()


def _decode(tensor: torch.Tensor) -> dict[str, Any]:
    return json.loads(bytes(tensor.numpy()).decode())


class ShardedCheckpointer:
    """Save ``{name: tensor}`` plus JSON metadata as ``root/step_<N>`` with DCP; the save runs in the background
    (the state is first copied to CPU memory, so training may go on changing it), at most one at a time, and
    only the newest ``keep`` complete checkpoints are kept. Every process of the group calls every method."""

    def __init__(self, root: str | Path, *, keep: int = 2, process_group: Any = None, asynchronous: bool = True) -> None:
        self.root = Path(root)
        self.keep, self.asynchronous = keep, asynchronous
        self.group = process_group
        self._pending: Any = None
        self._distributed = dist.is_available() and dist.is_initialized()
        self._rank = dist.get_rank() if self._distributed else 0

    def save(self, step: int, tensors: dict[str, torch.Tensor], shared: dict[str, Any],
             mine: dict[str, Any] | None = None) -> Path:
        """Write ``tensors`` (same key on several processes = one replicated tensor, saved once; DTensors are
        saved shard by shard), JSON ``shared`` by all processes, and this process's own JSON ``mine``."""
        self.wait()
        path = self.root / f"{_PREFIX}{step:09d}"
        if self._rank == 0:
            if path.exists():  # an incomplete save of this step from a worker that died: start it over
                shutil.rmtree(path)
            path.mkdir(parents=True)
        self._barrier()
        state = {**tensors, META: _encode(shared), self._mine_key: _encode(mine or {})}
        if self.asynchronous:
            self._pending = dcp.async_save(state, checkpoint_id=path, process_group=self.group,
                                           no_dist=not self._distributed)
        else:
            dcp.save(state, checkpoint_id=path, process_group=self.group, no_dist=not self._distributed)
            self._prune()
        return path

    def wait(self) -> None:
        """Block until the background save (if any) is complete on disk, then drop checkpoints beyond ``keep``."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
            self._prune()

    def latest(self) -> Path | None:
        """The newest complete checkpoint, as rank 0 sees it (so all processes agree)."""
        steps = [int(p.name[len(_PREFIX):]) for p in self._complete()] if self._rank == 0 else []
        found = max(steps, default=-1)
        if self._distributed:
            box = torch.tensor([found], dtype=torch.int64)
            dist.broadcast(box, 0, group=self.group)
            found = int(box)
        return None if found < 0 else self.root / f"{_PREFIX}{found:09d}"

    def load(self, path: Path, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fill ``tensors`` in place from ``path`` (DCP reshards as needed); returns (shared, mine) JSON."""
        reader = _SafeReader(path)
        items = reader.read_metadata().state_dict_metadata
        wanted = {**tensors, META: None, self._mine_key: None}
        for key in wanted:
            if key not in items:
                raise ArtifactError(f"checkpoint: {path} has no {key!r} (written by a different model or "
                                    "strategy?); start from an empty checkpoint_path or the matching setup")
            if not isinstance(items[key], TensorStorageMetadata):
                raise ArtifactError(f"checkpoint: {path}: {key!r} is not a tensor; refusing to unpickle it")
        state = {**tensors, **{key: torch.empty(items[key].size, dtype=torch.uint8) for key in (META, self._mine_key)}}
        dcp.load(state, storage_reader=reader, process_group=self.group, no_dist=not self._distributed)
        return _decode(state[META]), _decode(state[self._mine_key])

    @property
    def _mine_key(self) -> str:
        return f"{META}/rank{self._rank}"

    def _complete(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(f"{_PREFIX}*") if (p / ".metadata").is_file())

    def _prune(self) -> None:
        if self._rank != 0:
            return
        complete = self._complete()
        for old in complete[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        if complete:  # folders older than the newest complete one that never completed (a worker died)
            for partial in self.root.glob(f"{_PREFIX}*"):
                if partial.name < complete[-1].name and not (partial / ".metadata").is_file():
                    shutil.rmtree(partial, ignore_errors=True)

    def _barrier(self) -> None:
        if self._distributed:
            dist.barrier(group=self.group)
