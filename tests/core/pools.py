"""Real few-shot example pools from the sample data, shared by the prompt and generation tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llmsynth_core.prompts import Example


def ag_news_pool(sample_dir: Path, label: str, n: int) -> list[Example]:
    """The first n sample ag_news training rows of one label, as few-shot examples."""
    frame = pd.read_parquet(sample_dir / "ag_news" / "train.parquet")
    rows = frame[frame["label"] == label].head(n)
    return [Example(id=str(row.id), text=str(row.text)) for row in rows.itertuples()]
