"""The results tables: long order, wide gaps computed by hand, Markdown rendering."""

from __future__ import annotations

import pandas as pd
import pytest

from llmsynth_core.metrics import macro_f1
from llmsynth_core.results import (
    confusion_table,
    gap_cells,
    per_class_table,
    results_table,
    summarise_seeds,
    to_markdown,
    wide_table,
    with_ci,
)


def _metrics() -> pd.DataFrame:
    rows = [
        # task, subjectivity, model, source, macro_f1, accuracy
        ("tweet_irony", 5, "bert", "few_shot", 0.50, 0.55),
        ("tweet_irony", 5, "bert", "real", 0.70, 0.72),
        ("tweet_irony", 5, "bert", "zero_shot", 0.40, 0.52),
        ("ag_news", 1, "bert", "zero_shot", 0.80, 0.81),
        ("ag_news", 1, "bert", "real", 0.88, 0.89),
        ("ag_news", 1, "bert", "real", 0.92, 0.93),  # a second seed: averaged to 0.90
        ("ag_news", 1, "bert", "few_shot", 0.85, 0.86),
    ]
    return pd.DataFrame(
        rows, columns=["task", "subjectivity", "model", "source", "macro_f1", "accuracy"]
    )


def test_wide_table_gap_is_real_minus_source() -> None:
    wide = wide_table(_metrics())
    assert list(wide.columns) == [
        "task",
        "subjectivity",
        "model",
        "real",
        "zero_shot",
        "few_shot",
        "gap_zero_shot",
        "gap_few_shot",
    ]
    assert wide["task"].tolist() == ["ag_news", "tweet_irony"]  # most objective first
    ag, irony = wide.iloc[0], wide.iloc[1]
    assert ag["real"] == pytest.approx(0.90)
    assert ag["gap_zero_shot"] == pytest.approx(0.10)
    assert ag["gap_few_shot"] == pytest.approx(0.05)
    assert irony["gap_zero_shot"] == pytest.approx(0.30)
    assert irony["gap_few_shot"] == pytest.approx(0.20)


def test_wide_table_for_another_metric() -> None:
    wide = wide_table(_metrics(), metric="accuracy")
    assert wide.iloc[0]["gap_zero_shot"] == pytest.approx(0.91 - 0.81)
    assert wide.iloc[1]["gap_few_shot"] == pytest.approx(0.72 - 0.55)


def test_wide_table_without_real_has_no_gaps() -> None:
    metrics = _metrics()
    wide = wide_table(metrics[metrics["source"] != "real"])
    assert not any(str(column).startswith("gap_") for column in wide.columns)


def test_results_table_orders_by_subjectivity_then_source() -> None:
    table = results_table(_metrics())
    assert list(zip(table["task"], table["source"], strict=True)) == [
        ("ag_news", "real"),
        ("ag_news", "real"),
        ("ag_news", "zero_shot"),
        ("ag_news", "few_shot"),
        ("tweet_irony", "real"),
        ("tweet_irony", "zero_shot"),
        ("tweet_irony", "few_shot"),
    ]
    assert list(table.columns) == list(_metrics().columns)


def test_markdown_has_a_header_and_one_line_per_row() -> None:
    frame = pd.DataFrame({"task": ["ag_news", "imdb"], "n": [3, 4], "macro_f1": [0.9, 0.12345]})
    lines = to_markdown(frame).splitlines()
    assert lines[0] == "| task | n | macro_f1 |"
    assert lines[1] == "|---|---|---|"
    assert lines[2:] == ["| ag_news | 3 | 0.900 |", "| imdb | 4 | 0.123 |"]
    assert to_markdown(frame, digits=1).splitlines()[3] == "| imdb | 4 | 0.1 |"


def test_markdown_of_the_wide_table() -> None:
    wide = wide_table(_metrics())
    lines = to_markdown(wide).splitlines()
    assert len(lines) == 2 + len(wide)
    assert all(line.count("|") == len(wide.columns) + 1 for line in lines)
    assert "| ag_news | 1 | bert | 0.900 | 0.800 | 0.850 | 0.100 | 0.050 |" in lines


def _runs_and_predictions() -> tuple[pd.DataFrame, pd.DataFrame]:
    truth = [0, 1, 1, 0, 1, 0]
    seeds = {1: [0, 1, 1, 0, 1, 0], 2: [0, 1, 0, 0, 1, 1]}  # perfect; 4 of 6 right
    predictions = pd.DataFrame(
        [
            {
                "task": "t",
                "model": "m",
                "source": "real",
                "seed": seed,
                "row": row,
                "label_id": truth[row],
                "pred_id": pred[row],
            }
            for seed, pred in seeds.items()
            for row in range(len(truth))
        ]
    )
    runs = pd.DataFrame(
        [
            {
                "task": "t",
                "subjectivity": 2,
                "model": "m",
                "source": "real",
                "seed": seed,
                "n_train": 10,
                "n_test": 6,
                "best_epoch": epoch,
                "train_seconds": 1.0,
                "label_names": ["no", "yes"],
                "precision": p,
                "recall": r,
                "f1": f,
                "support": [3, 3],
                "confusion": c,
            }
            for seed, epoch, p, r, f, c in (
                (1, 2, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [[3, 0], [0, 3]]),
                (2, 3, [2 / 3, 2 / 3], [2 / 3, 2 / 3], [2 / 3, 2 / 3], [[2, 1], [1, 2]]),
            )
        ]
    )
    return runs, predictions


def test_summarise_seeds_gives_mean_std_and_ci() -> None:
    runs, predictions = _runs_and_predictions()
    table = summarise_seeds(runs, predictions, draws=200)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["n_seeds"] == 2
    assert row["accuracy"] == pytest.approx((1 + 4 / 6) / 2)
    assert row["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert row["accuracy_std"] == pytest.approx(pd.Series([1, 4 / 6]).std())
    assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"] <= 1.0
    assert row["best_epoch"] == 2.5
    cells = with_ci(table, "macro_f1")
    assert cells.loc[0, "real"].startswith("0.833 ± 0.236 [")


def test_per_class_and_confusion_tables() -> None:
    runs, _ = _runs_and_predictions()
    per_class = per_class_table(runs)
    assert per_class["label"].tolist() == ["no", "yes"]
    assert per_class["f1"].tolist() == pytest.approx([5 / 6, 5 / 6])
    confusion = confusion_table(runs)
    counts = {
        (t, p): n
        for t, p, n in zip(confusion["true"], confusion["pred"], confusion["count"], strict=True)
    }
    assert counts == {("no", "no"): 5, ("no", "yes"): 1, ("yes", "no"): 1, ("yes", "yes"): 5}


TRUTH = [0, 1, 1, 0, 1, 0]


def _run_of(source: str, seed: int, pred: list[int], replicate: int = 0) -> tuple[dict, list]:
    """One training run's metrics row and prediction rows on TRUTH (two balanced classes)."""
    f1 = macro_f1(TRUTH, pred, 2)
    run = {
        "task": "t",
        "subjectivity": 2,
        "model": "m",
        "source": source,
        "seed": seed,
        "replicate": replicate,
        "n_train": 10,
        "n_test": len(TRUTH),
        "best_epoch": 1,
        "train_seconds": 1.0,
        "label_names": ["no", "yes"],
        "macro_f1": f1,
    }
    rows = [
        {
            "task": "t",
            "model": "m",
            "source": source,
            "seed": seed,
            "replicate": replicate,
            "row": row,
            "label_id": TRUTH[row],
            "pred_id": pred[row],
        }
        for row in range(len(TRUTH))
    ]
    return run, rows


def _frames(*runs: tuple[dict, list]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.DataFrame([run for run, _ in runs]),
        pd.DataFrame([row for _, rows in runs for row in rows]),
    )


def test_summarise_seeds_adds_the_paired_gap_per_synthetic_source() -> None:
    four_of_six = [0, 1, 0, 0, 1, 1]  # Macro-F1 2/3
    runs, predictions = _frames(
        _run_of("real", 1, TRUTH),
        _run_of("real", 2, TRUTH),
        _run_of("zero_shot", 1, four_of_six),
        _run_of("zero_shot", 2, four_of_six),
    )
    table = summarise_seeds(runs, predictions, draws=200).set_index("source")
    assert table.loc["real", ["gap_macro_f1", "gap_low", "normalised_gap"]].isna().all()
    row = table.loc["zero_shot"]
    assert row["gap_macro_f1"] == pytest.approx(table.loc["real", "macro_f1"] - row["macro_f1"])
    assert row["gap_macro_f1"] == pytest.approx(1 / 3)
    assert row["gap_low"] <= row["gap_macro_f1"] <= row["gap_high"]
    # Chance Macro-F1 on two balanced classes is 1/2: a third lost of a margin of a half.
    assert row["chance_macro_f1"] == pytest.approx(0.5)
    assert row["normalised_gap"] == pytest.approx(2 / 3)
    assert row["normalised_gap_low"] <= row["normalised_gap"] <= row["normalised_gap_high"]
    cells = gap_cells(table.reset_index())
    assert list(cells.columns) == ["task", "subjectivity", "model", "zero_shot"]
    assert cells.loc[0, "zero_shot"].startswith("0.333 [")


def test_summarise_seeds_averages_replicates_and_counts_them() -> None:
    runs, predictions = _frames(
        _run_of("real", 1, TRUTH),
        _run_of("zero_shot", 1, TRUTH, replicate=0),
        _run_of("zero_shot", 1, [1 - y for y in TRUTH], replicate=1),  # Macro-F1 0
    )
    table = summarise_seeds(runs, predictions, draws=200).set_index("source")
    row = table.loc["zero_shot"]
    assert (row["n_seeds"], row["n_replicates"]) == (1, 2)
    assert row["macro_f1"] == pytest.approx(0.5)
    assert row["gap_macro_f1"] == pytest.approx(0.5)
    # Resampling the two replicates spans the gap from 0 (both right) to 1 (both wrong).
    assert (row["gap_low"], row["gap_high"]) == (0.0, 1.0)
    assert table.loc["real", "n_replicates"] == 1
