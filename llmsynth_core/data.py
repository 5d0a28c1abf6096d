"""Reading and validating a task's real data before any work starts."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Literal

import pandas as pd

from llmsynth_core.errors import DataError
from llmsynth_core.taskspec import TaskSpec

Split = Literal["train", "test"]
DATA_DIR_HINT = "pass --data-dir or set LLMSYNTH_DATA_DIR to the directory holding <task>/<split>"


def split_path(spec: TaskSpec, data_dir: Path, split: Split) -> Path:
    """Where a split lives: absolute paths as given, relative ones under the data directory."""
    relative = Path(spec.data.train if split == "train" else spec.data.test)
    return relative if relative.is_absolute() else data_dir / relative


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame."""
    if not path.exists():
        raise DataError(f"{path}: file not found; {DATA_DIR_HINT}")
    return parse_table(path.read_bytes(), str(path))


def parse_table(data: bytes, source: str) -> pd.DataFrame:
    """The bytes of a Parquet, CSV or TSV file (type from `source`'s suffix) as a DataFrame."""
    suffix = PurePosixPath(source).suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(io.BytesIO(data))
    if suffix in {".csv", ".tsv"}:
        sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(io.BytesIO(data), sep=sep, keep_default_na=False)
    raise DataError(f"{source}: unsupported file type {suffix!r}; use .parquet, .csv or .tsv")


def load_split(spec: TaskSpec, data_dir: Path, split: Split) -> pd.DataFrame:
    """A validated split with `text`, `label` and `label_id` columns (other columns kept)."""
    path = split_path(spec, data_dir, split)
    frame = read_table(path)
    return validate_split(frame, spec, str(path))


def validate_split(frame: pd.DataFrame, spec: TaskSpec, source: str) -> pd.DataFrame:
    """Check columns, texts and labels; return a normalised copy or raise naming the fix."""
    columns = {spec.data.text_column: "text", spec.data.label_column: "label"}
    for column, role in columns.items():
        if column not in frame.columns:
            raise DataError(
                f"{source}: missing {role} column {column!r} (columns: {list(frame.columns)}); "
                f"rename the column or set data.{role}_column in the {spec.id} task spec"
            )
    if frame.empty:
        raise DataError(f"{source}: the split is empty; it needs at least one row per label")
    if spec.data.agreement_column:
        columns[spec.data.agreement_column] = "agreement"
    renamed = _mapped(frame, columns)
    _check_texts(renamed["text"], source)
    labels = renamed["label"].astype(str)
    unknown = sorted(set(labels) - set(spec.label_names))
    if unknown:
        raise DataError(
            f"{source}: labels {unknown[:10]} are not in the {spec.id} label set "
            f"{spec.label_names}; fix the data or add them to labels in the task spec"
        )
    out = renamed.copy()
    out["label"] = labels
    out["label_id"] = labels.map({name: i for i, name in enumerate(spec.label_names)})
    return out.reset_index(drop=True)


def _mapped(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Rename the spec's columns to their roles; a file's own column that already bears a
    role's name (a `label` column beside the named one) is dropped, not duplicated."""
    shadowed = [role for role in columns.values() if role in frame.columns and role not in columns]
    return frame.drop(columns=shadowed).rename(columns=columns)


def _check_texts(texts: pd.Series, source: str) -> None:
    not_string = ~texts.map(lambda value: isinstance(value, str))
    if not_string.any():
        row = int(not_string.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{source}: column 'text' has {int(not_string.sum())} non-string value(s) "
            f"(first at row {row}: {texts.iloc[row]!r}); convert them to strings or drop them"
        )
    empty = texts.str.strip() == ""
    if empty.any():
        row = int(empty.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{source}: column 'text' has {int(empty.sum())} empty text(s) (first at row {row}); "
            "drop those rows"
        )
