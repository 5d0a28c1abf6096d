"""A run directory's files, read and written through RunLayout; Parquet checked both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from llmsynth_core.errors import DataError
from llmsynth_core.run_layout import FileKind, RunFile, RunLayout
from llmsynth_core.schemas import check_table, to_table
from tasks.artifacts import join_uri
from tasks.parquet_batches import ParquetBatchWriter


class RunDir:
    """One run directory, a local path or an fsspec URI; every file is a RunLayout entry."""

    def __init__(self, location: str) -> None:
        self.location = str(location).rstrip("/") or "/"

    def uri(self, file: RunFile) -> str:
        return join_uri(self.location, file.name)

    def exists(self, file: RunFile) -> bool:
        fs, path = fsspec.core.url_to_fs(self.uri(file))
        return bool(fs.exists(path))

    def write_frame(self, file: RunFile, frame: pd.DataFrame) -> str:
        """Write a Parquet file after checking the frame against its declared schema."""
        table = to_table(frame, _schema(file), file.name)
        with fsspec.open(self.uri(file), "wb", auto_mkdir=True) as handle:
            pq.write_table(table, handle)
        return self.uri(file)

    @contextmanager
    def writer(self, file: RunFile) -> Iterator[ParquetBatchWriter]:
        """A Parquet file written in batches, each checked against the declared schema."""
        with (
            fsspec.open(self.uri(file), "wb", auto_mkdir=True) as handle,
            ParquetBatchWriter(handle, _schema(file), file.name) as writer,
        ):
            yield writer

    def read_frame(self, file: RunFile) -> pd.DataFrame:
        """A Parquet file, checked against its declared schema.

        A file written before the schemas were declared (pandas' large strings, integer counts
        stored as floats) is cast to the declared types where the cast loses nothing; a
        missing or extra column, or a lossy cast, is an error.
        """
        schema = _schema(file)
        with fsspec.open(self.uri(file), "rb") as handle:
            table = pq.read_table(handle)
        if not table.schema.equals(schema, check_metadata=False):
            table = self._conform(table, file, schema)
        frame: pd.DataFrame = table.to_pandas()
        return frame

    def _conform(self, table: pa.Table, file: RunFile, schema: pa.Schema) -> pa.Table:
        try:
            if set(table.schema.names) != set(schema.names):
                check_table(table, schema, file.name)
            return table.select(schema.names).cast(schema)
        except (DataError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"{self.uri(file)} does not match the declared schema of {file.name} ({exc}); "
                "a run written by an older llmsynth: rewrite its files with the analyze flow "
                "(flows/analyze.py) on this run directory"
            ) from None

    def optional_frame(self, file: RunFile) -> pd.DataFrame | None:
        return self.read_frame(file) if self.exists(file) else None

    def write_json(self, file: RunFile, record: dict[str, Any]) -> str:
        return self.write_text(file, json.dumps(record, indent=2), kind="json")

    def read_json(self, file: RunFile) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.read_text(file, kind="json"))
        return record

    def optional_json(self, file: RunFile) -> dict[str, Any] | None:
        return self.read_json(file) if self.exists(file) else None

    def write_text(self, file: RunFile, text: str, kind: FileKind = "text") -> str:
        _check_kind(file, kind)
        with fsspec.open(self.uri(file), "wt", encoding="utf-8", auto_mkdir=True) as handle:
            handle.write(text)
        return self.uri(file)

    def read_text(self, file: RunFile, kind: FileKind = "text") -> str:
        _check_kind(file, kind)
        with fsspec.open(self.uri(file), "rt", encoding="utf-8") as handle:
            text: str = handle.read()
        return text

    def write_figure(self, key: str, png: bytes) -> str:
        """A report figure; returns its path relative to the run directory."""
        relative = RunLayout.figure(key)
        with fsspec.open(join_uri(self.location, relative), "wb", auto_mkdir=True) as handle:
            handle.write(png)
        return relative


def _check_kind(file: RunFile, wanted: FileKind) -> None:
    if file.kind != wanted:
        raise TypeError(
            f"{file.name} is a {file.kind} file, not {wanted}; use RunDir's {file.kind} methods"
        )


def _schema(file: RunFile) -> pa.Schema:
    _check_kind(file, "parquet")
    assert file.schema is not None  # every Parquet RunFile declares one
    return file.schema
