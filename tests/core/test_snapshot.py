"""Snapshot rows and keys: stable row ids, one evaluation subsample, keys that follow the data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from llmsynth_core.config import EvaluationConfig
from llmsynth_core.data import validate_split
from llmsynth_core.sampling import stratified_subsample
from llmsynth_core.schemas import SNAPSHOT
from llmsynth_core.snapshot import row_ids, snapshot_key, snapshot_rows
from llmsynth_core.taskspec import TaskSpec


def _rows(**extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": ["Rain delays the final.", "Shares rise.", "New chip.", "Shares rise."],
            "label": ["Sports", "Business", "Sci/Tech", "Business"],
            **extra,
        }
    )


def test_row_ids_are_the_data_ids_when_unique() -> None:
    assert row_ids(_rows(id=[7, 3, 9, 1])).tolist() == ["7", "3", "9", "1"]


@pytest.mark.parametrize("ids", [[1, 1, 2, 3], [1.0, None, 2.0, 3.0]], ids=["repeated", "gap"])
def test_row_ids_fall_back_to_content_hashes(ids: list[object]) -> None:
    hashed = row_ids(_rows(id=ids))
    assert hashed.tolist() == row_ids(_rows()).tolist()
    assert hashed.is_unique, "an exact duplicate row still gets an id of its own"


def test_content_row_ids_survive_inserted_and_reordered_rows() -> None:
    rows = _rows()
    before = dict(zip(rows["text"] + "|" + rows.index.astype(str), row_ids(rows), strict=True))
    inserted = pd.DataFrame({"text": ["Late goal."], "label": ["Sports"]})
    shuffled = pd.concat([rows.iloc[[2, 0]], inserted])
    after = row_ids(shuffled.reset_index(drop=True)).tolist()
    assert after[:2] == [before["New chip.|2"], before["Rain delays the final.|0"]]
    assert after[2] not in before.values()


def test_snapshot_rows_keep_the_schema_and_draw_the_evaluation_subsample(
    ag_news: TaskSpec, sample_dir: Path
) -> None:
    raw = pd.read_parquet(sample_dir / "ag_news" / "test.parquet")
    evaluation = EvaluationConfig(max_test_examples=24, seed=5)
    rows = snapshot_rows(raw, ag_news, "test.parquet", evaluation)
    assert list(rows.columns) == SNAPSHOT.names
    # The same rows, in the same order, that scoring drew from the validated split before.
    expected = stratified_subsample(validate_split(raw, ag_news, "t"), 24, 5)
    assert rows["row_id"].tolist() == expected["id"].astype(str).tolist()
    assert rows["text"].tolist() == expected["text"].tolist()
    assert rows["agreement"].isna().all()
    assert len(snapshot_rows(raw, ag_news, "test.parquet")) == len(raw)


def test_keys_follow_the_source_and_the_subsample(ag_news: TaskSpec) -> None:
    small, other = EvaluationConfig(max_test_examples=24), EvaluationConfig(max_test_examples=48)
    train = snapshot_key(ag_news, "train", "aa", None)
    assert snapshot_key(ag_news, "train", "bb", None) != train
    test = snapshot_key(ag_news, "test", "aa", small)
    assert test != train
    assert snapshot_key(ag_news, "test", "aa", other) != test
    assert snapshot_key(ag_news, "test", "bb", small) != test
    renamed = ag_news.model_copy(
        update={"data": ag_news.data.model_copy(update={"text_column": "body"})}
    )
    assert snapshot_key(renamed, "train", "aa", None) != train
