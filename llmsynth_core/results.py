"""The study's results table: Macro-F1 and accuracy per task, model and data source."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Literal

import numpy as np
import pandas as pd

from llmsynth_core.uncertainty import gap_columns, interval_columns, paired_gap, seed_intervals

SOURCE_ORDER = ["real", "zero_shot", "few_shot"]
RUN_KEYS = ["task", "subjectivity", "model", "source"]
WIDE_INDEX = ["task", "subjectivity", "model"]
# One trained model: its seed and, for synthetic sources, which generated set it trained on.
UNIT_KEYS = ["seed", "replicate"]
GAP_COLUMNS = [
    "chance_macro_f1",
    "gap_macro_f1",
    "gap_low",
    "gap_high",
    "normalised_gap",
    "normalised_gap_low",
    "normalised_gap_high",
]


def results_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, source), tasks from most objective to most subjective."""
    order = {source: i for i, source in enumerate(SOURCE_ORDER)}
    table = metrics.assign(_source=metrics["source"].map(lambda s: order.get(s, len(order))))
    table = table.sort_values(["subjectivity", "task", "model", "_source"]).drop(columns="_source")
    return table.reset_index(drop=True)


def _with_replicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs from before generation replicates trained on the one synthetic set: replicate 0."""
    return frame if "replicate" in frame.columns else frame.assign(replicate=0)


def summarise_seeds(
    runs: pd.DataFrame, predictions: pd.DataFrame, draws: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per (task, model, source): mean and std over its runs (seeds x replicates), 95%
    bootstrap CIs (runs and test instances resampled), the means of the run sizes and times,
    and for each synthetic source its paired gap to real (`gap_table`)."""
    runs, predictions = _with_replicate(runs), _with_replicate(predictions)
    rows = []
    by_run = dict(list(predictions.groupby(["task", "model", "source"], sort=False)))
    for keys, group in runs.groupby(RUN_KEYS, sort=False):
        key = dict(zip(RUN_KEYS, keys, strict=True))
        mine = by_run[(key["task"], key["model"], key["source"])]
        by_unit = [part for _, part in mine.sort_values([*UNIT_KEYS, "row"]).groupby(UNIT_KEYS)]
        truth = by_unit[0]["label_id"].to_numpy()
        intervals = seed_intervals(
            truth,
            [part["pred_id"].to_numpy() for part in by_unit],
            len(group["label_names"].iloc[0]),
            draws=draws,
            seed=seed,
        )
        rows.append(
            {
                **key,
                "n_seeds": group["seed"].nunique(),
                "n_replicates": group["replicate"].nunique(),
                **interval_columns(intervals),
                "n_train": int(group["n_train"].mean()),
                "n_test": int(group["n_test"].iloc[0]),
                "best_epoch": float(group["best_epoch"].mean()),
                "train_seconds": float(group["train_seconds"].mean()),
            }
        )
    classes = {
        str(t): len(names) for t, names in runs.groupby("task")["label_names"].first().items()
    }
    gaps = gap_table(predictions, classes, draws=draws, seed=seed)
    table = pd.DataFrame(rows).merge(gaps, on=["task", "model", "source"], how="left")
    return results_table(table)


def gap_table(
    predictions: pd.DataFrame, n_classes: dict[str, int], draws: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per task, model and synthetic source: real minus synthetic Macro-F1 with a paired
    bootstrap interval over the shared test rows and seeds, and normalised by real minus chance
    (`paired_gap`)."""
    predictions = _with_replicate(predictions)
    rows = []
    for (task, model), group in predictions.groupby(["task", "model"], sort=False):
        real = group[group["source"] == "real"]
        if real.empty:
            continue
        where = f"{task}/{model}"
        truth, real_preds = prediction_grid(real, f"{where}/real")
        for source, part in group[group["source"] != "real"].groupby("source", sort=False):
            synth_truth, synth_preds = prediction_grid(part, f"{where}/{source}")
            seeds = (sorted(set(real["seed"])), sorted(set(part["seed"])))
            if seeds[0] != seeds[1] or not np.array_equal(truth, synth_truth):
                raise ValueError(
                    f"{where}: real (seeds {seeds[0]}) and {source} (seeds {seeds[1]}) must be "
                    "evaluated with the same seeds on the same test rows; rerun both with one "
                    "config"
                )
            interval = paired_gap(
                truth, real_preds[:, 0, :], synth_preds, n_classes[str(task)], draws, seed
            )
            rows.append({"task": task, "model": model, "source": source, **gap_columns(interval)})
    return pd.DataFrame(rows, columns=["task", "model", "source", *GAP_COLUMNS])


def prediction_grid(predictions: pd.DataFrame, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth by test row, and predictions as (seeds, replicates, rows), rows in order."""
    ordered = predictions.sort_values([*UNIT_KEYS, "row"])
    n_seeds, n_replicates = ordered["seed"].nunique(), ordered["replicate"].nunique()
    n_rows = ordered["row"].nunique()
    if len(ordered) != n_seeds * n_replicates * n_rows:
        raise ValueError(
            f"{where}: predictions are not one per test row, seed and replicate "
            f"({len(ordered)} rows for {n_seeds} seeds x {n_replicates} replicates x "
            f"{n_rows} test rows); a training run is missing or duplicated"
        )
    first = ordered.iloc[:n_rows]
    return (
        first["label_id"].to_numpy(),
        ordered["pred_id"].to_numpy().reshape(n_seeds, n_replicates, n_rows),
    )


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


def gap_cells(results: pd.DataFrame, normalised: bool = False) -> pd.DataFrame:
    """Task x synthetic source cells "gap [low, high]" of the paired gap, or of the normalised
    gap; n/a where real is not above chance."""
    column, low, high = (
        ("normalised_gap", "normalised_gap_low", "normalised_gap_high")
        if normalised
        else ("gap_macro_f1", "gap_low", "gap_high")
    )
    synthetic = results[results["source"] != "real"]
    cells = synthetic.assign(
        cell=[
            "n/a" if pd.isna(g) else f"{g:.3f} [{lo:.3f}, {hi:.3f}]"
            for g, lo, hi in zip(synthetic[column], synthetic[low], synthetic[high], strict=True)
        ]
    )
    return _by_source(cells, "cell", "first")


SUMMARY_COLUMNS = ["task", "model", "source", "macro_f1", "macro_f1_ci", "gap", "gap_ci"]


def summary_cells(results: pd.DataFrame) -> pd.DataFrame:
    """One row per task, model and source (results order) as text: Macro-F1 and its interval,
    and for synthetic sources the paired gap to real and its interval; "" where a run has none
    (real's gap, or results from before intervals). No spread: one seed has none to show."""
    rows = []
    for row in results.to_dict("records"):
        rows.append(
            {
                "task": str(row["task"]),
                "model": str(row["model"]),
                "source": str(row["source"]),
                "macro_f1": f"{row['macro_f1']:.3f}",
                "macro_f1_ci": _interval(row, "macro_f1_ci_low", "macro_f1_ci_high"),
                "gap": "" if _absent(row.get("gap_macro_f1")) else f"{row['gap_macro_f1']:.3f}",
                "gap_ci": _interval(row, "gap_low", "gap_high"),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _interval(row: Mapping[Hashable, object], low: str, high: str) -> str:
    lo, hi = row.get(low), row.get(high)
    if _absent(lo) or _absent(hi):
        return ""
    return f"[{lo:.3f}, {hi:.3f}]"


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
