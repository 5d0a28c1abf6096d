"""Training as its own flow, so it can run as a deployment on a GPU work pool."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.experiment import store_root
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef
from tasks.snapshot import DataSnapshot
from tasks.train import train_evaluate_task


@flow(
    name="train",
    flow_run_name="train {spec.id}/{source}/{model_name}/seed{seed}/replicate{replicate}",
    log_prints=True,
)
def train(
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
    snapshot: DataSnapshot,
    output_dir: str = "llmsynth-output",
    seed: int | None = None,
    replicate: int = 0,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Fine-tune one encoder on one data source and evaluate it on the real test split.

    Args:
        spec: The task specification (labels, data location), as the pipeline resolved it.
        config: The experiment; its training and evaluation settings apply.
        model_name: Encoder to fine-tune, one of config.training.models.
        source: 'real' (size-matched real data), a generation mode (zero_shot, few_shot) or
            a mixture name from config.training.mixtures.
        generations: The generation artifacts to train on (empty for source 'real').
        snapshot: The task's data snapshot refs (train split, evaluation subsample) in the
            artifact store, as the pipeline's snapshot task wrote them.
        output_dir: Output directory or object-store URI shared with the pipeline.
        seed: Training seed (null: the first of config.training.seeds).
        replicate: Which synthetic set `generations` is (0 for real; see
            generation.replicates).
        counts: Rows per label to train on (a mixture: its synthetic part), as the pipeline's
            size matching set them; null: per_label real rows, or all accepted rows.

    Returns:
        The metrics artifact reference (uri, schema_name, rows, sha256) as a dict.
    """
    ref = train_evaluate_task(
        spec,
        config,
        model_name,
        source,
        generations,
        snapshot,
        store_root(output_dir),
        seed,
        replicate,
        counts,
    )
    return ref.model_dump(mode="json")
