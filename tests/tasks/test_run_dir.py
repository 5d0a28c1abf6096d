"""Run-directory files go through RunLayout: Parquet checked on write and on read."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmsynth_core.errors import DataError
from llmsynth_core.run_layout import RunLayout
from tasks.run_dir import RunDir

CONFUSION = pd.DataFrame(
    {
        "task": ["t"],
        "subjectivity": [1],
        "model": ["m"],
        "source": ["real"],
        "true": ["a"],
        "pred": ["b"],
        "count": [3],
    }
)


def test_every_run_file_has_one_name_and_parquet_files_a_schema() -> None:
    files = RunLayout.files()
    assert len({file.name for file in files}) == len(files) == 20
    assert all((file.schema is not None) == (file.kind == "parquet") for file in files)
    assert RunLayout.figure("curves-t") == "report-files/curves-t.png"


def test_a_frame_round_trips_and_a_wrong_one_is_refused_naming_the_columns(tmp_path: Path) -> None:
    run = RunDir(str(tmp_path / "run"))
    run.write_frame(RunLayout.CONFUSION, CONFUSION)
    pd.testing.assert_frame_equal(run.read_frame(RunLayout.CONFUSION), CONFUSION)
    with pytest.raises(DataError, match=r"missing \['count'\]"):
        run.write_frame(RunLayout.CONFUSION, CONFUSION.drop(columns="count"))
    with pytest.raises(TypeError, match=r"confusion\.parquet is a parquet file, not json"):
        run.write_json(RunLayout.CONFUSION, {})


def test_reading_checks_the_declared_schema(tmp_path: Path) -> None:
    run = RunDir(str(tmp_path))
    # What pandas wrote before the layout (large strings, a count as float) still reads.
    CONFUSION.assign(count=3.0).to_parquet(tmp_path / RunLayout.CONFUSION.name)
    assert run.read_frame(RunLayout.CONFUSION)["count"].tolist() == [3]
    CONFUSION.drop(columns="pred").to_parquet(tmp_path / RunLayout.CONFUSION.name)
    with pytest.raises(DataError, match="rewrite its files with the analyze flow"):
        run.read_frame(RunLayout.CONFUSION)
    table = pa.Table.from_pandas(CONFUSION.assign(count=2.5), preserve_index=False)
    pq.write_table(table, tmp_path / RunLayout.CONFUSION.name)
    with pytest.raises(DataError, match=r"declared schema of confusion\.parquet"):
        run.read_frame(RunLayout.CONFUSION)  # 2.5 rows: a lossy cast is refused


def test_json_and_text_files_on_an_object_store() -> None:
    run = RunDir(f"memory://run-{uuid.uuid4().hex[:8]}/runs/r")
    assert run.optional_json(RunLayout.SUMMARY) is None
    run.write_json(RunLayout.SUMMARY, {"config_hash": "abc"})
    run.write_text(RunLayout.RESULTS_MD, "# results\n")
    assert run.read_json(RunLayout.SUMMARY) == {"config_hash": "abc"}
    assert run.read_text(RunLayout.RESULTS_MD) == "# results\n"
    assert run.uri(RunLayout.SUMMARY).endswith("/runs/r/summary.json")


def test_findings_round_trip_with_an_untested_comparison(tmp_path: Path) -> None:
    from llmsynth_core.findings import findings_frame

    base = {"model": "m", "estimate": 0.1, "low": 0.05, "high": 0.2, "note": "n"}
    frame = findings_frame(
        [
            {**base, "finding": 1, "task": "t", "comparison": "real - zero_shot", "holds": True},
            {**base, "finding": 1, "task": "u", "comparison": "real - zero_shot", "holds": False},
            {**base, "finding": 2, "task": "all (2 tasks)", "comparison": "rho", "holds": None},
        ]
    )
    run = RunDir(str(tmp_path))
    run.write_frame(RunLayout.FINDINGS, frame)
    assert run.read_frame(RunLayout.FINDINGS)["holds"].tolist() == [True, False, None]
