"""Prefect task that ends the DAG: gather metrics into the results table and publish it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from llmsynth_core.agreement import agreement_analysis
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.results import results_table, to_markdown, wide_table
from tasks.artifacts import ArtifactRef, read_artifact


@task(name="analyze")
def analyze_task(
    config: ExperimentConfig,
    metrics: list[ArtifactRef],
    run_dir: str,
    diversity: list[ArtifactRef] | None = None,
) -> str:
    """Write results.parquet, results.md, diversity.parquet and summary.json to the run dir."""
    frame = pd.concat([read_artifact(ref) for ref in metrics], ignore_index=True)
    table = results_table(frame)
    wide_f1 = wide_table(frame, "macro_f1")
    wide_acc = wide_table(frame, "accuracy")
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "results.parquet", index=False)
    markdown = "\n\n".join(
        [
            f"# llmsynth results: {config.name}",
            f"Config hash `{config.semantic_hash()}`; generator `{config.llm.model}` "
            f"({config.llm.prompt_style}); {config.generation.per_label} examples per label.",
            "## Macro-F1 on the real test split (gap = real minus synthetic)",
            to_markdown(wide_f1),
            "## Accuracy",
            to_markdown(wide_acc),
            "## All runs",
            to_markdown(table),
            *_diversity_section(diversity or [], out),
            *_agreement_section(config, metrics, out),
        ]
    )
    (out / "results.md").write_text(markdown + "\n", encoding="utf-8")
    (out / "summary.json").write_text(
        json.dumps(
            {
                "config": config.model_dump(mode="json"),
                "config_hash": config.semantic_hash(),
                "metrics": [ref.model_dump() for ref in metrics],
            },
            indent=2,
        )
    )
    create_table_artifact(
        key="llmsynth-results",
        table=json.loads(wide_f1.to_json(orient="records")),
        description=f"Macro-F1 by task and data source ({config.name})",
    )
    create_markdown_artifact(key="llmsynth-report", markdown=markdown)
    return str(out / "results.md")


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
        "text's top-k synthetic neighbours.",
        to_markdown(frame),
    ]


def predictions_for(metrics_ref: ArtifactRef) -> Path:
    """Predictions are stored under the same key as the metrics row they produced."""
    data = Path(metrics_ref.uri)
    return data.parents[2] / "predictions" / data.parent.name / data.name


def _agreement_section(
    config: ExperimentConfig, metrics: list[ArtifactRef], out: Path
) -> list[str]:
    """Accuracy over agreement thresholds, for tasks whose test split has agreement levels."""
    frames = [pd.read_parquet(predictions_for(ref)) for ref in metrics]
    if not frames:
        return []
    sweeps, fits = agreement_analysis(
        pd.concat(frames, ignore_index=True), config.analysis.min_instances_per_threshold
    )
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
        f"{config.analysis.min_instances_per_threshold} instances are not fitted.",
        to_markdown(fits),
        to_markdown(sweeps),
    ]
