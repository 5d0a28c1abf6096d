"""Prefect task: gather the label chunks into the run's synthetic dataset and rejects file."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.schemas import GENERATIONS
from llmsynth_core.volume import shortfall_messages, task_totals, volume_table
from tasks.artifacts import ArtifactRef, iter_artifact, read_artifact
from tasks.run_dir import RunDir


@task(name="collect-generations")
def collect_generations_task(
    config: ExperimentConfig, refs: list[ArtifactRef], run_dir: str
) -> str:
    """Write synthetic.parquet (accepted rows), rejects.parquet (with reasons), generation.json."""
    run = RunDir(run_dir)
    rows = split_generations(refs, run)
    accepted = rows["accepted"].astype(bool)
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


def split_generations(refs: list[ArtifactRef], run: RunDir) -> pd.DataFrame:
    """The chunks' rows, in order, into synthetic.parquet (accepted) and rejects.parquet; the
    columns that the volume table counts, of every row.

    Rows pass through in batches: at the `paper` preset's scale, the whole concatenation (and
    its two halves) was the flow's largest allocation.
    """
    with run.writer(RunLayout.SYNTHETIC) as synthetic, run.writer(RunLayout.REJECTS) as rejects:
        for ref in refs:
            for table in iter_artifact(ref):
                accepted = table["accepted"]
                synthetic.write_table(table.filter(accepted))
                rejects.write_table(table.filter(pc.invert(accepted)))
    frames = [read_artifact(ref, _VOLUME_COLUMNS) for ref in refs]
    if not frames:
        frames = [GENERATIONS.empty_table().select(_VOLUME_COLUMNS).to_pandas()]
    return pd.concat(frames, ignore_index=True)


# What `volume_table` and generation.json count.
_VOLUME_COLUMNS = [
    "task",
    "mode",
    "label",
    "accepted",
    "reject_reason",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
]
