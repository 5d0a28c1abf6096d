"""The snapshot task: splits read from a path or an fsspec URI, stored once per content."""

from __future__ import annotations

import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from llmsynth_core.errors import DataError
from llmsynth_core.registry import load_registry
from tasks.artifacts import read_artifact
from tasks.snapshot import snapshot_task
from tests.flows.configs import small_config

TASK = "tweet_irony"


def _copy(sample_dir: Path, target: Path) -> Path:
    shutil.copytree(sample_dir / TASK, target / TASK)
    return target


def test_a_uri_data_dir_gives_the_same_snapshot_as_a_local_one(
    sample_dir: Path, tmp_path: Path
) -> None:
    spec = load_registry()[TASK]
    config = small_config("http://127.0.0.1:9/v1", tasks=(TASK,))
    fs = fsspec.filesystem("memory")
    for split in ("train", "test"):
        fs.pipe(
            f"/snapshot-test/{TASK}/{split}.parquet",
            (sample_dir / TASK / f"{split}.parquet").read_bytes(),
        )
    try:
        remote = snapshot_task.fn(spec, config, "memory://snapshot-test", str(tmp_path / "a"))
    finally:
        fs.rm("/snapshot-test", recursive=True)
    local = snapshot_task.fn(spec, config, str(sample_dir), str(tmp_path / "b"))
    assert remote.train.sha256 == local.train.sha256
    assert remote.test.sha256 == local.test.sha256
    train = read_artifact(local.train)
    raw = pd.read_parquet(sample_dir / TASK / "train.parquet")
    assert train["row_id"].tolist() == raw["id"].astype(str).tolist()
    assert local.test.rows == 24  # the evaluation subsample, not the whole split


def test_snapshots_are_written_once_per_content(sample_dir: Path, tmp_path: Path) -> None:
    spec = load_registry()[TASK]
    config = small_config("http://127.0.0.1:9/v1", tasks=(TASK,))
    data, store = _copy(sample_dir, tmp_path / "data"), str(tmp_path / "store")
    first = snapshot_task.fn(spec, config, str(data), store)
    assert snapshot_task.fn(spec, config, str(data), store) == first
    assert len(list((tmp_path / "store" / "snapshots").iterdir())) == 2

    train = pd.read_parquet(data / TASK / "train.parquet")
    train.loc[5, "text"] = "an edited training text"
    train.to_parquet(data / TASK / "train.parquet")
    edited = snapshot_task.fn(spec, config, str(data), store)
    assert edited.train.sha256 != first.train.sha256
    assert edited.test == first.test
    assert "an edited training text" in read_artifact(edited.train)["text"].tolist()


def test_a_missing_split_names_the_location_and_the_fix(tmp_path: Path) -> None:
    spec = load_registry()[TASK]
    config = small_config("http://127.0.0.1:9/v1", tasks=(TASK,))
    with pytest.raises(DataError, match="LLMSYNTH_DATA_DIR") as info:
        snapshot_task.fn(spec, config, str(tmp_path), str(tmp_path / "store"))
    assert str(tmp_path / TASK / "train.parquet") in str(info.value)
