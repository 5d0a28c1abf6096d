"""Prefect task: gather the label chunks into the run's synthetic dataset and rejects file."""

from __future__ import annotations

import json

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.schemas import GENERATIONS
from llmsynth_core.volume import shortfall_messages, task_totals, volume_table
from tasks.artifacts import ArtifactRef, read_artifact
from tasks.run_dir import RunDir


@task(name="collect-generations")
def collect_generations_task(
    config: ExperimentConfig, refs: list[ArtifactRef], run_dir: str
) -> str:
    """Write synthetic.parquet (accepted rows), rejects.parquet (with reasons), generation.json."""
    run = RunDir(run_dir)
    frames = [read_artifact(ref) for ref in refs]
    rows = pd.concat(frames, ignore_index=True) if frames else GENERATIONS.empty_table().to_pandas()
    accepted = rows["accepted"].astype(bool)
    run.write_frame(RunLayout.SYNTHETIC, rows[accepted])
    run.write_frame(RunLayout.REJECTS, rows[~accepted])
    # With generation.replicates > 1 the volume of a label sums over its synthetic sets.
    replicates = config.generation.replicates
    volume = volume_table(rows, config.generation.per_label * replicates)
    shortfalls = shortfall_messages(volume, config.generation.max_attempts_factor)
    logger = get_run_logger()
    for message in shortfalls:
        logger.warning("quota shortfall: %s", message)
    records = json.loads(volume.to_json(orient="records"))
    run.write_json(
        RunLayout.GENERATION,
        {
            "config_hash": config.semantic_hash(),
            "accepted": int(accepted.sum()),
            "rejected": int((~accepted).sum()),
            "cost_usd": float(rows["cost_usd"].sum()),
            "shortfalls": shortfalls,
            "tasks": task_totals(volume),
            "labels": records,
        },
    )
    create_table_artifact(
        key="llmsynth-generation",
        table=records,
        description=f"Generation volume, drops per gate and cost ({config.name})",
    )
    return run.uri(RunLayout.SYNTHETIC)
