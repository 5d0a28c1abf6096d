"""A task's real data as every stage sees it: validated rows with stable ids, the evaluation
subsample drawn once, and the content keys that name them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmsynth_core.config import EvaluationConfig
from llmsynth_core.data import Split, validate_split
from llmsynth_core.hashing import stable_hash
from llmsynth_core.sampling import stratified_subsample
from llmsynth_core.schemas import SNAPSHOT
from llmsynth_core.taskspec import TaskSpec

# Bump when the rows a snapshot holds change for the same source bytes (validation, row ids,
# the subsample): every snapshot is rebuilt, and with it everything keyed on its sha256.
SNAPSHOT_VERSION = "1"


def snapshot_key(
    spec: TaskSpec, split: Split, source_sha256: str, evaluation: EvaluationConfig | None
) -> str:
    """Content address of a split's snapshot: the source bytes and what reads them.

    The train snapshot leaves the evaluation settings out, so changing them keeps the few-shot
    generations and the real-data training sets.
    """
    fields: dict[str, Any] = {
        "task": spec.id,
        "split": split,
        "source_sha256": source_sha256,
        "data": spec.data.model_dump(mode="json", exclude={"train", "test", "hub"}),
        "labels": spec.label_names,
        "version": SNAPSHOT_VERSION,
    }
    if split == "test":
        fields["evaluation"] = _subsample_settings(evaluation)
    return stable_hash(fields, length=32)


def snapshot_rows(
    frame: pd.DataFrame, spec: TaskSpec, source: str, evaluation: EvaluationConfig | None = None
) -> pd.DataFrame:
    """Validate a raw split and keep the snapshot's columns; with `evaluation`, only its
    subsample, in the fixed order every consumer scores it in."""
    rows = validate_split(frame, spec, source)
    out = pd.DataFrame(
        {
            "row_id": row_ids(rows),
            "text": rows["text"],
            "label": rows["label"],
            "label_id": rows["label_id"].astype("int64"),
            "agreement": rows["agreement"].astype(float) if "agreement" in rows else float("nan"),
        }
    )
    if evaluation is not None and evaluation.max_test_examples:
        out = stratified_subsample(out, evaluation.max_test_examples, evaluation.seed)
    ordered: pd.DataFrame = out[SNAPSHOT.names].reset_index(drop=True)
    return ordered


def row_ids(rows: pd.DataFrame) -> pd.Series:
    """The data's own `id` column when it is present and unique; otherwise a hash of each
    row's text and label, with the repeat number of an exact duplicate (so inserting or
    reordering other rows leaves every id as it was)."""
    if has_own_ids(rows):
        return rows["id"].astype(str).reset_index(drop=True)
    repeat = rows.groupby(["text", "label"], sort=False).cumcount()
    hashed = [
        stable_hash([text, label, int(n)])
        for text, label, n in zip(rows["text"], rows["label"], repeat, strict=True)
    ]
    return pd.Series(hashed, dtype=str)


def has_own_ids(rows: pd.DataFrame) -> bool:
    """Whether the data's `id` column can serve as row ids: present, complete and unique."""
    if "id" not in rows.columns:
        return False
    return not rows["id"].isna().any() and rows["id"].astype(str).is_unique


def _subsample_settings(evaluation: EvaluationConfig | None) -> dict[str, Any]:
    if evaluation is None or not evaluation.max_test_examples:
        return {"max_test_examples": None}
    return {"max_test_examples": evaluation.max_test_examples, "seed": evaluation.seed}
