"""Prefect task that ends the DAG: gather metrics into the results table and publish it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

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
