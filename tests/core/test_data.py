"""Reading real data: each malformed file fails naming the file and what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llmsynth_core.data import load_split
from llmsynth_core.errors import DataError
from llmsynth_core.taskspec import DataSpec, TaskSpec


def _spec(base: TaskSpec, train: str, **data: Any) -> TaskSpec:
    return base.model_copy(update={"data": DataSpec(train=train, test="test.parquet", **data)})


def _good_rows() -> dict[str, list[Any]]:
    return {
        "text": ["Rain delays the final.", "Shares rise on earnings.", "New chip unveiled."],
        "label": ["Sports", "Business", "Sci/Tech"],
    }


def _load_error(spec: TaskSpec, data_dir: Path) -> str:
    with pytest.raises(DataError) as info:
        load_split(spec, data_dir, "train")
    return str(info.value)


def test_sample_ag_news_loads_with_manifest_label_ids(
    ag_news: TaskSpec, sample_dir: Path, datasets_dir: Path
) -> None:
    manifest = json.loads((datasets_dir / "manifest.json").read_text(encoding="utf-8"))
    names = manifest["tasks"]["ag_news"]["label_names"]
    raw = pd.read_parquet(sample_dir / "ag_news" / "train.parquet")

    frame = load_split(ag_news, sample_dir, "train")

    assert len(frame) == len(raw) == manifest["tasks"]["ag_news"]["sample"]["train"]["rows"]
    assert frame["label_id"].tolist() == [names.index(label) for label in raw["label"]]
    # The file carries its own label_id (written by the dataset builder): an independent check.
    assert frame["label_id"].tolist() == raw["label_id"].tolist()
    assert (
        frame["label"].value_counts().to_dict()
        == (manifest["tasks"]["ag_news"]["sample"]["train"]["label_counts"])
    )


def test_custom_column_names_are_normalised(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    pd.DataFrame(
        {"body": rows["text"], "topic": rows["label"], "agree": [1.0, 0.75, 0.5]}
    ).to_parquet(tmp_path / "train.parquet")
    spec = _spec(
        ag_news, "train.parquet", text_column="body", label_column="topic", agreement_column="agree"
    )
    frame = load_split(spec, tmp_path, "train")
    assert frame["text"].tolist() == rows["text"]
    assert frame["label_id"].tolist() == [1, 2, 3]
    assert frame["agreement"].tolist() == [1.0, 0.75, 0.5]


def test_missing_file_names_the_path_and_the_fix(ag_news: TaskSpec, tmp_path: Path) -> None:
    message = _load_error(_spec(ag_news, "ag_news/train.parquet"), tmp_path)
    assert str(tmp_path / "ag_news" / "train.parquet") in message
    assert "--data-dir" in message and "LLMSYNTH_DATA_DIR" in message


def test_missing_text_column(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    pd.DataFrame({"body": rows["text"], "label": rows["label"]}).to_parquet(
        tmp_path / "train.parquet"
    )
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "missing text column 'text'" in message
    assert "'body'" in message  # the columns that are there
    assert "data.text_column" in message


def test_missing_label_column(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    pd.DataFrame({"text": rows["text"], "category": rows["label"]}).to_csv(
        tmp_path / "train.csv", index=False
    )
    message = _load_error(_spec(ag_news, "train.csv"), tmp_path)
    assert str(tmp_path / "train.csv") in message
    assert "missing label column 'label'" in message
    assert "data.label_column" in message


def test_labels_outside_the_label_set_are_named(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    rows["label"][1] = "Politics"
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "['Politics']" in message
    assert "Sports" in message  # the valid label set is shown


def test_empty_split(ag_news: TaskSpec, tmp_path: Path) -> None:
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "train.parquet"
    )
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "empty" in message


def test_none_text(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    texts: list[Any] = list(rows["text"])
    texts[2] = None
    pd.DataFrame({"text": texts, "label": rows["label"]}).to_parquet(tmp_path / "train.parquet")
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "column 'text' has 1 non-string value(s)" in message
    assert "first at row 2" in message


def test_integer_text_column(ag_news: TaskSpec, tmp_path: Path) -> None:
    # Parquet columns have one type, so a numeric "text" column is all ints.
    pd.DataFrame({"text": [101, 202, 303], "label": _good_rows()["label"]}).to_parquet(
        tmp_path / "train.parquet"
    )
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "column 'text' has 3 non-string value(s)" in message
    assert "first at row 0" in message and "101" in message
    assert "convert them to strings" in message


@pytest.mark.parametrize("blank", ["", "   \t "], ids=["empty", "whitespace"])
def test_empty_or_blank_text(ag_news: TaskSpec, tmp_path: Path, blank: str) -> None:
    rows = _good_rows()
    rows["text"][1] = blank
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    message = _load_error(_spec(ag_news, "train.parquet"), tmp_path)
    assert str(tmp_path / "train.parquet") in message
    assert "empty text" in message and "row 1" in message


def test_empty_csv_cell_is_an_empty_text_not_nan(ag_news: TaskSpec, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(
        "text,label\nRain delays the final.,Sports\n,Business\n", encoding="utf-8"
    )
    message = _load_error(_spec(ag_news, "train.csv"), tmp_path)
    assert str(tmp_path / "train.csv") in message
    assert "empty text" in message and "row 1" in message


def test_unsupported_file_type(ag_news: TaskSpec, tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text("[]", encoding="utf-8")
    message = _load_error(_spec(ag_news, "train.json"), tmp_path)
    assert str(tmp_path / "train.json") in message and ".parquet" in message


def test_named_columns_win_over_columns_called_text_and_label(
    ag_news: TaskSpec, tmp_path: Path
) -> None:
    # A file with its own `text` and `label` columns, and a spec that names other ones.
    rows = _good_rows()
    pd.DataFrame(
        {
            "text": ["a headline", "another headline", "a third one"],
            "label": ["0", "1", "2"],
            "body": rows["text"],
            "topic": rows["label"],
            "agreement": [0.1, 0.2, 0.3],
            "agree": [1.0, 0.75, 0.5],
        }
    ).to_parquet(tmp_path / "train.parquet")
    spec = _spec(
        ag_news, "train.parquet", text_column="body", label_column="topic", agreement_column="agree"
    )
    frame = load_split(spec, tmp_path, "train")
    assert frame["text"].tolist() == rows["text"]
    assert frame["label"].tolist() == rows["label"]
    assert frame["label_id"].tolist() == [1, 2, 3]
    assert frame["agreement"].tolist() == [1.0, 0.75, 0.5]
    assert list(frame.columns).count("label") == 1


def test_text_and_label_columns_may_swap_names(ag_news: TaskSpec, tmp_path: Path) -> None:
    rows = _good_rows()
    pd.DataFrame({"label": rows["text"], "text": rows["label"]}).to_parquet(
        tmp_path / "train.parquet"
    )
    spec = _spec(ag_news, "train.parquet", text_column="label", label_column="text")
    frame = load_split(spec, tmp_path, "train")
    assert frame["text"].tolist() == rows["text"]
    assert frame["label"].tolist() == rows["label"]
