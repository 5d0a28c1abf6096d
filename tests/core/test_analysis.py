"""A run's analysis on tiny in-memory frames: every table fits its declared run-file schema."""

from __future__ import annotations

import pandas as pd
import pytest

from llmsynth_core.agreement import HUMAN, LLM_ESTIMATE
from llmsynth_core.analysis import (
    RunInputs,
    agreement_tables,
    analyse_run,
    diversity_table,
    run_summary,
    subjectivity_record,
)
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.metrics import classification_metrics
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.schemas import CURVES, METRICS, PREDICTIONS, to_table
from llmsynth_core.size_matching import LabelSizes
from llmsynth_core.subjectivity import Comparison

LABELS = ["no", "yes"]
TRUTH = [0, 1, 0, 1, 0, 1]
# Task "a" has human agreement per test row; task "b" has none (the panel may estimate it).
AGREEMENT = {"a": [0.5, 0.5, 0.75, 0.75, 1.0, 1.0], "b": [None] * 6}
PREDS = {"real": [0, 1, 0, 1, 0, 0], "zero_shot": [0, 0, 0, 1, 1, 1]}


def _inputs(tasks: dict[str, int], preds: dict[str, list[int]] = PREDS) -> RunInputs:
    """One seed of each source (default: real and zero_shot) per task (name: subjectivity
    level), 6 test rows."""
    runs, predictions, curves = [], [], []
    for task, level in tasks.items():
        for source, pred in preds.items():
            key = {"task": task, "model": "m", "source": source, "seed": 1, "replicate": 0}
            scores = classification_metrics(TRUTH, pred, len(LABELS))
            runs.append(
                {
                    **key,
                    "subjectivity": level,
                    "n_train": 4,
                    "n_validation": 0,
                    "n_test": len(TRUTH),
                    "train_counts": [2, 2],
                    "macro_f1": scores.macro_f1,
                    "accuracy": scores.accuracy,
                    "best_epoch": 1,
                    "epochs_run": 1,
                    "label_names": LABELS,
                    "precision": list(scores.precision),
                    "recall": list(scores.recall),
                    "f1": list(scores.f1),
                    "support": list(scores.support),
                    "confusion": [list(row) for row in scores.confusion],
                    "leaked_test_texts": 0,
                    "train_seconds": 1.0,
                }
            )
            for row, (truth, guess) in enumerate(zip(TRUTH, pred, strict=True)):
                predictions.append(
                    {
                        **key,
                        "row": row,
                        "row_id": f"{task}{row}",
                        "label": LABELS[truth],
                        "label_id": truth,
                        "pred_id": guess,
                        "pred": LABELS[guess],
                        "correct": truth == guess,
                        "probs": [0.5, 0.5],
                        "agreement": AGREEMENT.get(task, [None] * 6)[row],
                    }
                )
            curves.append(
                {
                    **key,
                    "epoch": 1,
                    "train_loss": 0.7,
                    "validation_macro_f1": None,
                    "test_macro_f1": scores.macro_f1,
                    "seconds": 1.0,
                }
            )
    return RunInputs(
        runs=pd.DataFrame(runs)[METRICS.names],
        predictions=pd.DataFrame(predictions)[PREDICTIONS.names],
        curves=pd.DataFrame(curves)[CURVES.names],
    )


def _estimates(task: str) -> pd.DataFrame:
    """A k=3 panel's labels for every test row of a task; one row unparsable (dropped)."""
    return pd.DataFrame(
        {
            "task": task,
            "row": range(6),
            "row_id": [f"{task}{row}" for row in range(6)],
            "annotations": [["no", "no", "yes"]] * 6,
            "raw": [["no", "no", "yes"]] * 6,
            "agreement_estimate": [None, 1 / 3, 2 / 3, 2 / 3, 1.0, 1.0],
            "model": "panel-model",
        }
    )


def _config(**analysis: object) -> ExperimentConfig:
    config = ExperimentConfig(name="tiny", tasks=["a", "b"])
    return config.model_copy(update={"analysis": config.analysis.model_copy(update=analysis)})


def test_every_table_fits_its_declared_run_file_schema() -> None:
    inputs = _inputs({"a": 1, "b": 3})
    sizes = [LabelSizes(task="a", label="no", wanted=3, have={"real": 2}, used={"real": 2})]
    tables = analyse_run(_config(min_instances_per_threshold=1), _replace(inputs, sizes=sizes))
    assert set(tables.frames) == {
        RunLayout.RESULTS,
        RunLayout.RUNS,
        RunLayout.PER_CLASS,
        RunLayout.CONFUSION,
        RunLayout.CURVES,
        RunLayout.AGREEMENT_SWEEPS,
        RunLayout.AGREEMENT_FITS,
        RunLayout.FINDINGS,
    }
    for file, frame in tables.frames.items():
        assert file.schema is not None
        assert to_table(frame, file.schema, file.name).num_rows == len(frame)
    results = tables.frames[RunLayout.RESULTS].set_index(["task", "source"])
    real, zero_shot = results.loc[("a", "real")], results.loc[("a", "zero_shot")]
    assert zero_shot["gap_macro_f1"] == pytest.approx(real["macro_f1"] - zero_shot["macro_f1"])
    assert pd.isna(real["gap_macro_f1"])
    # 2 tasks x 2 sources x 2 labels; every true/predicted pair of each run.
    assert len(tables.frames[RunLayout.PER_CLASS]) == 8
    assert len(tables.frames[RunLayout.CONFUSION]) == 16
    assert set(tables.records) == {RunLayout.SUBJECTIVITY, RunLayout.SIZE_MATCHING}
    assert tables.records[RunLayout.SIZE_MATCHING] == {
        "policy": "equal",
        "per_label": 24,
        "labels": [sizes[0].model_dump(mode="json")],
    }
    note = tables.records[RunLayout.SUBJECTIVITY]["note"]
    assert note == "The subjectivity fit needs at least 4 tasks; this run has 2."
    # The findings: finding 1 per task, finding 2 untested on 2 tasks, finding 3 only on the
    # task with human agreement ("a"), with the same gap as the results.
    findings = tables.frames[RunLayout.FINDINGS]
    tested = findings.groupby("finding")["task"].apply(list).to_dict()
    assert tested == {
        1: ["a", "b"],
        2: ["all (2 tasks)"],
        3: ["a", "a", "a"],  # real rise, zero_shot rise, zero_shot rise - real rise
    }
    first = findings[(findings["finding"] == 1) & (findings["task"] == "a")].iloc[0]
    assert first["estimate"] == pytest.approx(zero_shot["gap_macro_f1"])
    assert findings.loc[findings["finding"] == 2, "holds"].isna().all()


def test_learning_curve_points_enter_only_their_own_tables() -> None:
    # real@1 is worse and real@2 better than zero_shot: its real-equivalent lies between.
    preds = {**PREDS, "real@1": [1, 1, 1, 1, 0, 0], "real@2": [0, 1, 0, 1, 0, 1]}
    tasks = {"a": 1, "b": 2, "c": 3, "d": 4}
    config = _config(min_instances_per_threshold=1)
    training = config.training.model_copy(update={"real_curve": [1, 2]})
    config = config.model_copy(update={"training": training})
    tables = analyse_run(config, _inputs(tasks, preds))
    study = {"real", "zero_shot"}
    for file in (RunLayout.RESULTS, RunLayout.PER_CLASS, RunLayout.CONFUSION):
        assert set(tables.frames[file]["source"]) == study, file.name
    for file in (RunLayout.AGREEMENT_SWEEPS, RunLayout.AGREEMENT_FITS):
        assert set(tables.frames[file]["source"]) == study, file.name
    subjectivity = tables.records[RunLayout.SUBJECTIVITY]
    assert set(subjectivity["gaps"]) == set(subjectivity["spearman"]) == {"zero_shot"}
    # Every training run is still on record.
    assert set(tables.frames[RunLayout.RUNS]["source"]) == study | {"real@1", "real@2"}
    worth = tables.frames[RunLayout.REAL_EQUIVALENT]
    assert to_table(worth, RunLayout.REAL_EQUIVALENT.schema, "w").num_rows == 4  # type: ignore[arg-type]
    assert set(worth["source"]) == {"zero_shot"}
    assert worth["real_equivalent"].between(1, 2).all()
    curve = tables.frames[RunLayout.REAL_CURVE]
    assert sorted(set(curve["source"])) == ["real@1", "real@2"]


def _replace(inputs: RunInputs, **changes: object) -> RunInputs:
    return RunInputs(**{**inputs.__dict__, **changes})  # type: ignore[arg-type]


def test_a_run_without_agreement_sizes_or_diversity_leaves_those_files_out() -> None:
    inputs = _inputs({"b": 3})
    tables = analyse_run(_config(), inputs)
    assert RunLayout.AGREEMENT_SWEEPS not in tables.frames
    assert RunLayout.DIVERSITY not in tables.frames
    assert RunLayout.SIZE_MATCHING not in tables.records


def test_agreement_is_human_where_the_test_split_has_it_else_the_panels_estimate() -> None:
    inputs = _inputs({"a": 1, "b": 3})
    sweeps, fits = agreement_tables(inputs.predictions, _estimates("b"), min_instances=1)
    assert list(sweeps.columns) == RunLayout.AGREEMENT_SWEEPS.schema.names  # type: ignore[union-attr]
    assert list(fits.columns) == RunLayout.AGREEMENT_FITS.schema.names  # type: ignore[union-attr]
    origin = sweeps.groupby("task")["agreement_source"].apply(set).to_dict()
    assert origin == {"a": {HUMAN}, "b": {LLM_ESTIMATE}}
    assert sweeps.loc[sweeps["task"] == "a", "panel"].isna().all()
    panel = sweeps[sweeps["task"] == "b"]
    assert set(panel["panel"]) == {"LLM estimate (panel-model, k=3)"}
    assert set(panel["panel_dropped"]) == {1}
    # Human thresholds: the distinct agreement levels of task a, each with its row count.
    human = sweeps[(sweeps["task"] == "a") & (sweeps["source"] == "real")]
    assert dict(zip(human["threshold"], human["n"], strict=True)) == {0.5: 6, 0.75: 4, 1.0: 2}


def test_agreement_without_any_rated_row_is_empty() -> None:
    sweeps, fits = agreement_tables(_inputs({"b": 3}).predictions, None, min_instances=1)
    assert sweeps.empty and fits.empty


def test_subjectivity_from_judgments_replaces_the_registry_levels_and_fits_four_tasks() -> None:
    gaps = {"a": 0.05, "b": 0.1, "c": 0.2, "d": 0.3}
    results = pd.DataFrame(
        [
            {"task": task, "subjectivity": level, "source": source, "macro_f1": f1}
            for level, (task, gap) in enumerate(gaps.items(), start=1)
            for source, f1 in (("real", 0.9), ("zero_shot", 0.9 - gap))
        ]
    )
    order = ["a", "b", "c", "d"]  # judged from most to least objective
    comparisons = [
        Comparison(first, second, first)
        for i, first in enumerate(order)
        for second in order[i + 1 :]
    ]
    record = subjectivity_record(results, comparisons, "pairs.csv", seed=0)
    assert record["source"] == "Bradley-Terry on 6 judgments from pairs.csv"
    levels = record["subjectivity"]
    assert sorted(levels, key=levels.get) == order  # least subjective first
    assert levels == {task: -strength for task, strength in record["bradley_terry"].items()}
    assert record["spearman"]["zero_shot"]["rho"] == pytest.approx(1.0)
    assert record["note"] == ""
    registry = subjectivity_record(results, None, "", seed=0)
    assert registry["source"] == "author-assigned levels"
    assert registry["subjectivity"] == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    assert registry["bradley_terry"] == {}


def test_diversity_runs_from_the_most_objective_task_keeping_source_order() -> None:
    frame = pd.DataFrame(
        {"task": ["z", "z", "y"], "subjectivity": [5, 5, 1], "source": ["real", "few_shot", "real"]}
    )
    ordered = diversity_table(frame)
    assert list(zip(ordered["task"], ordered["source"], strict=True)) == [
        ("y", "real"),
        ("z", "real"),
        ("z", "few_shot"),
    ]


def test_the_summary_names_config_provenance_and_every_analysed_artifact() -> None:
    config = _config()
    ref = {"uri": "u", "schema_name": "metrics", "rows": 1, "sha256": "s"}
    summary = run_summary(
        config,
        [{"setting": "x", "value": "1", "status": "assumed"}],
        {"git_revision": "abc"},
        {"metrics": [ref], "diversity": [], "annotations": []},
        None,
    )
    assert list(summary) == [
        "config",
        "config_hash",
        "provenance",
        "assumed",
        "metrics",
        "diversity",
        "annotations",
        "size_matching",
    ]
    assert summary["config_hash"] == config.semantic_hash()
    assert ExperimentConfig.model_validate(summary["config"]) == config
    assert summary["metrics"] == [ref] and summary["size_matching"] is None
