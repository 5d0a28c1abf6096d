"""Prefect task that ends the DAG: gather metrics into the results table and publish it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from llmsynth_core.agreement import (
    HUMAN,
    agreement_analysis,
    estimate_analysis,
    panel_notes,
)
from llmsynth_core.assumptions import assumed_settings
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.data import read_table
from llmsynth_core.registry import load_registry, select_tasks
from llmsynth_core.report import GAP_TEXT, NORMALISED_GAP_TEXT
from llmsynth_core.results import (
    confusion_table,
    gap_cells,
    per_class_table,
    summarise_seeds,
    to_markdown,
    train_counts_table,
    wide_table,
    with_ci,
)
from llmsynth_core.size_matching import LabelSizes
from llmsynth_core.subjectivity import (
    MIN_TASKS,
    SPEARMAN_TEXT,
    Comparison,
    bradley_terry,
    gap_correlation,
    gaps_by_mode,
    read_comparisons,
    subjectivity_source,
    too_few_tasks,
)
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, provenance, read_artifact, read_parquet, sibling
from tasks.report import write_report

LIST_COLUMNS = {"label_names", "precision", "recall", "f1", "support", "confusion", "train_counts"}
SIZE_MATCHING_FILE = "size_matching.json"


@task(name="analyze")
def analyze_task(
    config: ExperimentConfig,
    metrics: list[ArtifactRef],
    run_dir: str,
    diversity: list[ArtifactRef] | None = None,
    data_dir: str | None = None,
    annotations: list[ArtifactRef] | None = None,
    size_matching: list[LabelSizes] | None = None,
) -> str:
    """Write results.parquet (one row per task, model and source, over seeds), runs.parquet
    (one per seed, with per-label training counts), per-class, confusion, curves, diversity
    and agreement tables, size_matching.json, results.md, summary.json and the report."""
    runs = pd.concat([read_artifact(ref) for ref in metrics], ignore_index=True)
    predictions = pd.concat(
        [read_parquet(sibling(ref.uri, "predictions"), "predictions") for ref in metrics],
        ignore_index=True,
    )
    table = summarise_seeds(runs, predictions, seed=config.analysis.seed)
    wide_f1 = wide_table(table, "macro_f1")
    wide_acc = wide_table(table, "accuracy")
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "results.parquet", index=False)
    runs.to_parquet(out / "runs.parquet", index=False)
    per_class = per_class_table(runs)
    per_class.to_parquet(out / "per_class.parquet", index=False)
    confusion_table(runs).to_parquet(out / "confusion.parquet", index=False)
    curves = pd.concat(
        [read_parquet(sibling(ref.uri, "curves"), "curves") for ref in metrics], ignore_index=True
    )
    curves.to_parquet(out / "curves.parquet", index=False)
    # None: a run from before size matching, whose sizes are unknown; say nothing about them.
    sizes = None if size_matching is None else [s.model_dump(mode="json") for s in size_matching]
    if sizes is not None:
        (out / SIZE_MATCHING_FILE).write_text(
            json.dumps(
                {
                    "policy": config.training.size_matching,
                    "per_label": config.generation.per_label,
                    "labels": sizes,
                },
                indent=2,
            )
        )
    markdown = "\n\n".join(
        [
            f"# llmsynth results: {config.name}",
            f"Config hash `{config.semantic_hash()}`; generator `{config.llm.model}` "
            f"({config.llm.prompt_style}); {config.generation.per_label} examples per label; "
            f"seeds {config.training.seeds}.",
            "## Macro-F1 on the real test split (gap = real minus synthetic)",
            to_markdown(wide_f1),
            *([] if size_matching is None else _sizes_section(config, runs, size_matching)),
            "## Accuracy",
            to_markdown(wide_acc),
            "## Macro-F1 over seeds: mean ± std [95% bootstrap CI]",
            to_markdown(with_ci(table, "macro_f1")),
            "## Real-minus-synthetic gap",
            GAP_TEXT,
            to_markdown(gap_cells(table)),
            NORMALISED_GAP_TEXT,
            to_markdown(gap_cells(table, normalised=True)),
            "## Per-class scores (mean over seeds)",
            to_markdown(per_class),
            "## All runs",
            to_markdown(runs[[c for c in runs.columns if c not in LIST_COLUMNS]]),
            *_diversity_section(diversity or [], out),
            *_agreement_section(config, predictions, out, annotations or []),
            *_subjectivity_section(config, table, out, data_dir),
        ]
    )
    (out / "results.md").write_text(markdown + "\n", encoding="utf-8")
    (out / "summary.json").write_text(
        json.dumps(
            {
                "config": config.model_dump(mode="json"),
                "config_hash": config.semantic_hash(),
                "provenance": provenance(),
                "assumed": assumed_settings(config, _specs(config)),
                "metrics": [ref.model_dump() for ref in metrics],
                "diversity": [ref.model_dump() for ref in diversity or []],
                "annotations": [ref.model_dump() for ref in annotations or []],
                "size_matching": sizes,
            },
            indent=2,
        )
    )
    create_table_artifact(
        key="llmsynth-results",
        table=json.loads(wide_f1.to_json(orient="records")),
        description=f"Macro-F1 by task and data source ({config.name})",
    )
    create_markdown_artifact(key="llmsynth-results-md", markdown=markdown)
    report_md, report_html = write_report(out)
    # The Markdown report without its figures (they live beside the file), and a link to the
    # self-contained HTML, which a browser on the machine holding the run directory opens.
    create_markdown_artifact(key="llmsynth-report", markdown=report_md.read_text())
    create_link_artifact(
        key="llmsynth-report-html",
        link=report_html.resolve().as_uri(),
        link_text="llmsynth report (HTML)",
        description=f"Self-contained HTML report of {config.name}",
    )
    return str(out / "results.md")


def _specs(config: ExperimentConfig) -> list[TaskSpec]:
    registry = load_registry(Path(directory) for directory in config.task_dirs)
    return select_tasks(registry, config.tasks)


def _sizes_section(
    config: ExperimentConfig, runs: pd.DataFrame, sizes: list[LabelSizes]
) -> list[str]:
    """Training rows per label and source, and each label some source fell short on."""
    policy = config.training.size_matching
    lines = [
        "## Training rows per label and source",
        "Sources differ in size (training.size_matching: none)."
        if policy == "none"
        else "Size-matched (training.size_matching: equal): per label, every source trains "
        "on the minimum of generation.per_label, the real rows and each mode's accepted rows.",
    ]
    lines += [f"Shortfall: {size.describe(policy)}." for size in sizes if size.capped]
    counts = train_counts_table(runs)
    if not counts.empty:
        lines.append(to_markdown(counts))
    return lines


def _diversity_section(refs: list[ArtifactRef], out: Path) -> list[str]:
    """Diversity per task and source (the study: real > few-shot > zero-shot) and similarity."""
    if not refs:
        return []
    frame = pd.concat([read_artifact(ref) for ref in refs], ignore_index=True)
    frame = frame.sort_values(["subjectivity", "task"], kind="stable").reset_index(drop=True)
    frame.to_parquet(out / "diversity.parquet", index=False)
    create_table_artifact(
        key="llmsynth-diversity",
        table=json.loads(frame.to_json(orient="records")),
        description="Diversity (Remote-Clique, Chamfer, distinct-n) and similarity to real data",
    )
    return [
        "## Diversity and similarity to real data",
        "Remote-Clique: mean distance to all other texts; Chamfer: mean distance to the nearest "
        "other text (higher = more diverse); similarity: mean cosine similarity of each real "
        "text's top-k synthetic neighbours. All sources of a task are measured on the same "
        "number of texts (n), the real ones sampled to the synthetic label distribution; "
        "'(before gates)' rows: all non-empty replies, before the quality gates dropped any.",
        to_markdown(frame),
    ]


def _agreement_section(
    config: ExperimentConfig,
    predictions: pd.DataFrame,
    out: Path,
    annotations: list[ArtifactRef],
) -> list[str]:
    """Accuracy over agreement thresholds: human agreement where the test split has it, else
    the LLM panel's estimate (labelled as such)."""
    minimum = config.analysis.min_instances_per_threshold
    human_sweeps, human_fits = agreement_analysis(predictions, minimum)
    sweep_parts = [human_sweeps.assign(agreement_source=HUMAN)]
    fit_parts = [human_fits.assign(agreement_source=HUMAN)]
    if annotations:
        estimates = pd.concat([read_artifact(ref) for ref in annotations], ignore_index=True)
        estimate_sweeps, estimate_fits = estimate_analysis(predictions, estimates, minimum)
        sweep_parts.append(estimate_sweeps)
        fit_parts.append(estimate_fits)
    sweeps = _stack(sweep_parts)
    fits = _stack(fit_parts)
    if sweeps.empty:
        return []
    sweeps.to_parquet(out / "agreement_sweeps.parquet", index=False)
    fits.to_parquet(out / "agreement_fits.parquet", index=False)
    create_table_artifact(
        key="llmsynth-agreement",
        table=json.loads(fits.to_json(orient="records")),
        description="Accuracy vs annotator agreement: linear fit (slope, R^2) and Spearman rho",
    )
    return [
        "## Accuracy vs annotator agreement (instance-level subjectivity)",
        "Accuracy on test instances with agreement a_i >= threshold; thresholds with fewer than "
        f"{config.analysis.min_instances_per_threshold} instances are not fitted. Rows marked "
        "llm-estimate use agreement estimated by an LLM annotator panel, not human agreement.",
        *panel_notes(sweeps),
        to_markdown(fits),
        to_markdown(sweeps),
    ]


def _subjectivity_section(
    config: ExperimentConfig, metrics: pd.DataFrame, out: Path, data_dir: str | None
) -> list[str]:
    """Task subjectivity (author-assigned registry levels, or Bradley-Terry on judgments)
    against the gap: Spearman's rho, its bootstrap CI over tasks and a permutation p-value."""
    first = metrics.groupby("task")["subjectivity"].first()
    levels = {str(task): float(level) for task, level in first.items()}
    comparisons: list[Comparison] = []
    strengths: dict[str, float] = {}
    if config.analysis.comparisons_file:
        path = Path(config.analysis.comparisons_file)
        if not path.is_absolute() and data_dir:
            path = Path(data_dir) / path
        comparisons = read_comparisons(read_table(path), str(path))
        strengths = bradley_terry(comparisons)
        # Subjectivity is the negative objectivity strength: higher = more subjective.
        levels = {task: -strength for task, strength in strengths.items() if task in levels}
    source = subjectivity_source(comparisons, config.analysis.comparisons_file or "")
    gaps = gaps_by_mode(metrics)
    correlations = {}
    notes = {}
    for mode, by_task in gaps.items():
        shared = len(set(levels) & set(by_task))
        if shared >= MIN_TASKS:
            result = gap_correlation(levels, by_task, seed=config.analysis.seed)
            correlations[mode] = asdict(result)
        else:
            notes[mode] = too_few_tasks(shared)
    note = next(iter(notes.values()), too_few_tasks(len(levels))) if not correlations else ""
    (out / "subjectivity.json").write_text(
        json.dumps(
            {
                "source": source,
                "subjectivity": levels,
                "bradley_terry": strengths,
                "gaps": gaps,
                "spearman": correlations,
                "note": note,
            },
            indent=2,
        )
    )
    lines = ["## Task subjectivity vs the real-minus-synthetic gap", f"Subjectivity: {source}."]
    if correlations:
        rows = pd.DataFrame([{"mode": mode, **values} for mode, values in correlations.items()])
        lines += [SPEARMAN_TEXT, to_markdown(rows)]
    else:
        lines.append(note)
    return lines


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    non_empty = [frame for frame in frames if not frame.empty]
    return pd.concat(non_empty, ignore_index=True) if non_empty else frames[0]
