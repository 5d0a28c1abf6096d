"""The study's results table: Macro-F1 and accuracy per task, model and data source."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from llmsynth_core.uncertainty import interval_columns, seed_intervals

SOURCE_ORDER = ["real", "zero_shot", "few_shot"]
RUN_KEYS = ["task", "subjectivity", "model", "source"]
WIDE_INDEX = ["task", "subjectivity", "model"]


def results_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, source), tasks from most objective to most subjective."""
    order = {source: i for i, source in enumerate(SOURCE_ORDER)}
    table = metrics.assign(_source=metrics["source"].map(lambda s: order.get(s, len(order))))
    table = table.sort_values(["subjectivity", "task", "model", "_source"]).drop(columns="_source")
    return table.reset_index(drop=True)


def summarise_seeds(
    runs: pd.DataFrame, predictions: pd.DataFrame, draws: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per (task, model, source): mean and std over seeds, 95% bootstrap CIs (seeds and
    test instances resampled), and the means of the run sizes and times."""
    rows = []
    by_run = dict(list(predictions.groupby(["task", "model", "source"], sort=False)))
    for keys, group in runs.groupby(RUN_KEYS, sort=False):
        key = dict(zip(RUN_KEYS, keys, strict=True))
        mine = by_run[(key["task"], key["model"], key["source"])].sort_values(["seed", "row"])
        by_seed = [part for _, part in mine.groupby("seed", sort=True)]
        truth = by_seed[0]["label_id"].to_numpy()
        intervals = seed_intervals(
            truth,
            [part["pred_id"].to_numpy() for part in by_seed],
            len(group["label_names"].iloc[0]),
            draws=draws,
            seed=seed,
        )
        rows.append(
            {
                **key,
                "n_seeds": len(group),
                **interval_columns(intervals),
                "n_train": int(group["n_train"].mean()),
                "n_test": int(group["n_test"].iloc[0]),
                "best_epoch": float(group["best_epoch"].mean()),
                "train_seconds": float(group["train_seconds"].mean()),
            }
        )
    return results_table(pd.DataFrame(rows))


def per_class_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, averaged over seeds."""
    exploded = runs[[*RUN_KEYS, "label_names", "precision", "recall", "f1", "support"]].explode(
        ["label_names", "precision", "recall", "f1", "support"]
    )
    exploded = exploded.rename(columns={"label_names": "label"})
    for column in ("precision", "recall", "f1", "support"):
        exploded[column] = exploded[column].astype(np.float64)
    table = exploded.groupby([*RUN_KEYS, "label"], sort=False).mean(numeric_only=True)
    return table.reset_index()


def train_counts_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Training rows per task and label (the task's label order), one column per source: what
    each source's models learned from. Empty for runs that did not record them."""
    if "train_counts" not in runs.columns:
        return pd.DataFrame()
    cells: dict[tuple[float, str, str], dict[str, int]] = {}
    columns = ["subjectivity", "task", "source", "label_names", "train_counts"]
    for subjectivity, task, source, names, counts in zip(
        *(runs[column] for column in columns), strict=True
    ):
        for label, count in zip(names, counts, strict=True):
            key = (float(subjectivity), str(task), str(label))
            cells.setdefault(key, {})[str(source)] = int(count)
    sources = list(dict.fromkeys(str(s) for s in runs["source"]))
    ordered = [s for s in SOURCE_ORDER if s in sources] + [
        s for s in sources if s not in SOURCE_ORDER
    ]
    rows = []
    for key in sorted(cells, key=lambda key: key[:2]):  # stable: labels keep the task's order
        _, task, label = key
        rows.append({"task": task, "label": label, **{s: cells[key].get(s) for s in ordered}})
    return pd.DataFrame(rows)


def confusion_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Confusion counts summed over seeds, long format (true label, predicted label, count)."""
    rows = []
    for keys, group in runs.groupby(RUN_KEYS, sort=False):
        names = list(group["label_names"].iloc[0])
        total = np.stack([np.array([list(r) for r in m]) for m in group["confusion"]]).sum(axis=0)
        key = dict(zip(RUN_KEYS, keys, strict=True))
        for i, true in enumerate(names):
            for j, pred in enumerate(names):
                rows.append({**key, "true": true, "pred": pred, "count": int(total[i][j])})
    return pd.DataFrame(rows)


def with_ci(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Task x source cells "mean ± std [low, high]" of a summarised metric."""
    cells = results.assign(
        cell=[
            f"{m:.3f} ± {s:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, s, lo, hi in zip(
                results[metric],
                results[f"{metric}_std"],
                results[f"{metric}_ci_low"],
                results[f"{metric}_ci_high"],
                strict=True,
            )
        ]
    )
    return _by_source(cells, "cell", "first")


def wide_table(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Task x source for one metric, plus the real-minus-source gap of each synthetic source."""
    wide = _by_source(metrics, metric, "mean")
    sources = [c for c in wide.columns if c not in WIDE_INDEX]
    if "real" in sources:
        for source in sources:
            if source != "real":
                wide[f"gap_{source}"] = wide["real"] - wide[source]
    return wide


def _by_source(frame: pd.DataFrame, values: str, aggfunc: Literal["mean", "first"]) -> pd.DataFrame:
    """One row per task and model, one column per source (study order first), most objective
    task first."""
    wide = frame.pivot_table(index=WIDE_INDEX, columns="source", values=values, aggfunc=aggfunc)
    sources = [s for s in SOURCE_ORDER if s in wide.columns] + [
        s for s in wide.columns if s not in SOURCE_ORDER
    ]
    wide = wide[sources]
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
