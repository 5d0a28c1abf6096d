"""Parquet written in bounded batches as rows come, so no stage holds a whole file in memory.

At the `paper` preset's scale a label chunk has tens of thousands of rows and a run hundreds of
thousands; held as Python dicts, then a DataFrame, then an Arrow table, they were most of the
flow's memory. Rows go out as row groups of `BATCH_ROWS` instead; reading the file back gives
exactly the rows, in order, that one `to_table` of them all would have.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from llmsynth_core.schemas import check_table, to_table

# Rows per row group. Small enough that the buffer is a few MB at most (a generation row is
# about 2 KB as a dict) and that a 10,000-request run buffers as much as a 100,000-request one.
BATCH_ROWS = 1024


class ParquetBatchWriter:
    """Rows (dicts with the schema's columns) and tables appended in order to one Parquet file,
    as row groups of `batch_rows` rows or so.

    Rows are converted a batch at a time exactly as a whole frame would be (`to_table`, which
    checks the columns and types); the file carries the declared schema.
    """

    def __init__(
        self,
        where: str | Path | BinaryIO,
        schema: pa.Schema,
        name: str,
        compression: str = "snappy",
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self._schema, self._name, self._batch_rows = schema, name, batch_rows
        sink = str(where) if isinstance(where, Path) else where
        self._writer = pq.ParquetWriter(sink, schema, compression=compression)
        self._rows: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self._buffered = 0
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) + self._buffered >= self._batch_rows:
            self.flush()

    def write_table(self, table: pa.Table) -> None:
        """Append a table of the declared schema (after any rows added before it)."""
        check_table(table, self._schema, self._name)
        self._convert_rows()
        self._tables.append(table)
        self._buffered += table.num_rows
        if self._buffered >= self._batch_rows:
            self.flush()

    def _convert_rows(self) -> None:
        if self._rows:
            rows, self._rows = self._rows, []
            table = to_table(pd.DataFrame(rows), self._schema, self._name)
            self._tables.append(table)
            self._buffered += table.num_rows

    def flush(self) -> None:
        """Write what is buffered as one row group."""
        self._convert_rows()
        if self._buffered:
            table = pa.concat_tables(self._tables).replace_schema_metadata(None)
            self._writer.write_table(table)
            self.rows += table.num_rows
        self._tables, self._buffered = [], 0

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __enter__(self) -> ParquetBatchWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:  # failing: close the file without converting the rows still pending
            self._rows, self._tables = [], []
            self._writer.close()
