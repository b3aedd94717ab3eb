"""Reading and writing tables of rows chunk by chunk (CSV, JSON Lines, Parquet), so memory stays at one chunk."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._core.errors import invalid

FORMATS = (".csv", ".jsonl", ".parquet")


def read_chunks(source: str | Path, chunk_size: int, text_columns: tuple[str, ...] = (), *,
                argument: str = "data") -> Iterator[Any]:
    """DataFrames of at most ``chunk_size`` rows, in file order (``text_columns`` of a CSV read as text, not
    parsed as numbers); a missing, unknown, binary or corrupt file is one clear error naming ``argument`` and
    the file."""
    import pandas as pd

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise invalid(argument, str(path), f"a file ending in one of {list(FORMATS)}")
    if not path.is_file():
        raise invalid(argument, str(path), "an existing file" if not path.exists() else "a file, not a folder")
    if suffix != ".parquet":  # text formats: a NUL byte or undecodable bytes mean a binary file renamed
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if b"\x00" in head:
            raise invalid(argument, str(path), f"a text {suffix[1:].upper()} file (this one holds NUL bytes: "
                                               "a binary file?)")
    start = 0
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
            reader: Any = contextlib.nullcontext(batch.to_pandas() for batch in batches)
        else:
            reader = (pd.read_csv(path, chunksize=chunk_size, dtype=dict.fromkeys(text_columns, str),
                                  keep_default_na=False, na_values=[""]) if suffix == ".csv"
                      else pd.read_json(path, lines=True, chunksize=chunk_size, dtype=False))
        with reader as frames:
            for frame in frames:
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
    except Exception as e:  # pyarrow's and pandas' parser errors have no common base besides Exception
        if isinstance(e, (ValueError, OSError, UnicodeDecodeError)) or \
                type(e).__module__.split(".")[0] in ("pyarrow", "pandas"):
            raise invalid(argument, str(path), f"a readable {suffix[1:].upper()} file ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]})") from None
        raise


class ChunkWriter:
    """Appends DataFrames to one CSV / JSONL / Parquet file (the header or schema from the first chunk)."""

    def __init__(self, path: str | Path, suffix: str) -> None:
        if suffix not in FORMATS:
            raise invalid("output", str(path), f"a file ending in one of {list(FORMATS)}")
        self.path, self.suffix = Path(path), suffix
        self._parquet: Any = None
        self._first = True
        self._handle = None if suffix == ".parquet" else open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()

    def write(self, frame: Any) -> None:
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            elif table.schema != self._parquet.schema:
                table = table.cast(self._parquet.schema)
            self._parquet.write_table(table)
        elif self.suffix == ".csv":
            frame.to_csv(self._handle, index=False, header=self._first)
        elif len(frame):
            text = frame.to_json(orient="records", lines=True, force_ascii=False)
            self._handle.write(text if text.endswith("\n") else text + "\n")
        self._first = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
