"""The study's results table: Macro-F1 and accuracy per task, model and data source."""

from __future__ import annotations

import pandas as pd

SOURCE_ORDER = ["real", "zero_shot", "few_shot"]


def results_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, source), tasks from most objective to most subjective."""
    order = {source: i for i, source in enumerate(SOURCE_ORDER)}
    table = metrics.assign(_source=metrics["source"].map(lambda s: order.get(s, len(order))))
    table = table.sort_values(["subjectivity", "task", "model", "_source"]).drop(columns="_source")
    return table.reset_index(drop=True)


def wide_table(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Task x source for one metric, plus the real-minus-source gap of each synthetic source."""
    wide = metrics.pivot_table(
        index=["task", "subjectivity", "model"], columns="source", values=metric, aggfunc="mean"
    )
    sources = [s for s in SOURCE_ORDER if s in wide.columns] + [
        s for s in wide.columns if s not in SOURCE_ORDER
    ]
    wide = wide[sources]
    if "real" in wide.columns:
        for source in sources:
            if source != "real":
                wide[f"gap_{source}"] = wide["real"] - wide[source]
    wide.columns.name = None
    return wide.reset_index().sort_values(["subjectivity", "task", "model"]).reset_index(drop=True)


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-style Markdown table (floats rounded)."""

    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
