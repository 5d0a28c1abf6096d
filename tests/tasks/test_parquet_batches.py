"""Parquet in bounded batches: the same rows, types and order as one write of the whole frame."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmsynth_core.errors import DataError
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.schemas import GENERATIONS, to_table
from tasks.artifacts import ArtifactStore, iter_artifact, read_artifact, read_parquet
from tasks.collect import split_generations
from tasks.parquet_batches import ParquetBatchWriter
from tasks.run_dir import RunDir


def _row(index: int, label: str = "World", reason: str | None = None) -> dict[str, Any]:
    return {
        "task": "ag_news",
        "mode": "few_shot" if index % 2 else "zero_shot",
        "label": label,
        "text": f"Report {index}: talks end. ünïcode",
        "raw_text": f"Sure! Report {index}: talks end. ünïcode",
        "accepted": reason is None,
        "reject_reason": reason,
        "request_index": index,
        "conversation": index // 3,
        "turn": index % 3,
        "style": "",
        "length": "short",
        "few_shot_ids": [f"id{index}", "id0"] if index % 2 else [],
        "model": "fake-model",
        "endpoint_kind": "openai-compatible",
        "prompt_version": "p@1",
        "prompt_hash": f"{index:064x}",
        "request_hash": f"{index + 1:064x}",
        "seed": index * 7,
        "finish_reason": "stop",
        "prompt_tokens": 100 + index,
        "completion_tokens": 20,
        "latency_s": 0.05 + index / 1000,
        "cost_usd": 1e-6 * (index + 1) / 3,
    }


# Batches of three: the first and the last batch have no rejects (a column of None only).
ROWS = [_row(i, reason="refusal" if i in (4, 7) else None) for i in range(11)]


def _whole(rows: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    """What the store wrote before: one table of the whole frame."""
    pq.write_table(to_table(pd.DataFrame(rows), GENERATIONS, "generations"), path)
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def test_rows_written_in_batches_read_back_as_one_write_of_the_whole_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "batched.parquet"
    with ParquetBatchWriter(path, GENERATIONS, "generations", batch_rows=3) as writer:
        for row in ROWS:
            writer.add(row)
    assert writer.rows == len(ROWS)
    assert pq.read_metadata(path).num_row_groups == 4  # bounded batches, not one big group
    batched = pq.read_table(path)
    assert batched.schema.equals(GENERATIONS, check_metadata=False)
    pd.testing.assert_frame_equal(batched.to_pandas(), _whole(ROWS, tmp_path / "whole.parquet"))


def test_tables_and_rows_keep_their_order_in_row_groups_of_about_the_batch_size(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.parquet"
    tables = [to_table(pd.DataFrame([row]), GENERATIONS, "generations") for row in ROWS[3:9]]
    with ParquetBatchWriter(path, GENERATIONS, "generations", batch_rows=4) as writer:
        for row in ROWS[:3]:
            writer.add(row)
        for table in tables:  # one-row tables are gathered into row groups, not one each
            writer.write_table(table)
        for row in ROWS[9:]:
            writer.add(row)
    assert pq.read_metadata(path).num_row_groups == 3
    assert pq.read_table(path).column("request_index").to_pylist() == list(range(11))


def test_an_empty_writer_leaves_a_readable_file_of_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    with ParquetBatchWriter(path, GENERATIONS, "generations"):
        pass
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.schema.equals(GENERATIONS, check_metadata=False)


def test_a_row_or_table_off_the_schema_is_refused(tmp_path: Path) -> None:
    with ParquetBatchWriter(tmp_path / "bad.parquet", GENERATIONS, "generations") as writer:
        with pytest.raises(DataError, match="missing"):
            writer.add({"task": "ag_news"})
            writer.flush()
        with pytest.raises(DataError, match="declared schema"):
            writer.write_table(pa.table({"task": ["x"]}))


def test_staged_artifact_is_published_like_a_written_one(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with store.staged("generations", "k1") as staged:
        with ParquetBatchWriter(staged, GENERATIONS, "generations", "zstd", 4) as writer:
            for row in ROWS:
                writer.add(row)
        ref = store.publish_file("generations", "k1", staged, "generations", {"stage": "x"})
    assert not staged.exists()
    assert ref.rows == len(ROWS)
    assert hashlib.sha256(Path(ref.uri).read_bytes()).hexdigest() == ref.sha256
    manifest = json.loads((Path(ref.uri).parent / "manifest.json").read_text())
    assert manifest["stage"] == "x" and manifest["artifact"]["sha256"] == ref.sha256
    expected = _whole(ROWS, tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(read_artifact(ref), expected)
    # Write-once: a second publication under the key returns the first.
    with store.staged("generations", "k1") as staged:
        with ParquetBatchWriter(staged, GENERATIONS, "generations") as writer:
            writer.add(ROWS[0])
        assert store.publish_file("generations", "k1", staged, "generations", {}) == ref
    columns = ["accepted", "cost_usd"]
    pd.testing.assert_frame_equal(read_parquet(ref.uri, "generations", columns), expected[columns])
    assert sum(t.num_rows for t in iter_artifact(ref, batch_rows=5)) == len(ROWS)


def test_a_failed_staging_leaves_no_file_and_no_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with (
        pytest.raises(RuntimeError),
        store.staged("generations", "k2") as staged,
        ParquetBatchWriter(staged, GENERATIONS, "generations") as writer,
    ):
        writer.add(ROWS[0])
        raise RuntimeError("the endpoint went away")
    assert not staged.exists()
    assert store.existing("generations", "k2") is None


def test_collect_splits_the_chunks_in_order_as_filtering_their_concatenation(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(tmp_path / "store")
    chunks = [ROWS, [_row(i, "Sports", "duplicate" if i % 4 == 0 else None) for i in range(9)]]
    refs = [
        store.write("generations", f"c{i}", pd.DataFrame(rows), "generations", {})
        for i, rows in enumerate(chunks)
    ]
    run = RunDir(str(tmp_path / "run"))
    counted = split_generations(refs, run)
    every = pd.concat([read_artifact(ref) for ref in refs], ignore_index=True)
    accepted = every["accepted"].astype(bool)
    expected = {
        RunLayout.SYNTHETIC: every[accepted].reset_index(drop=True),
        RunLayout.REJECTS: every[~accepted].reset_index(drop=True),
    }
    for file, frame in expected.items():
        pd.testing.assert_frame_equal(run.read_frame(file), frame)
    pd.testing.assert_frame_equal(counted, every[list(counted.columns)])
    assert len(split_generations([], RunDir(str(tmp_path / "none")))) == 0
