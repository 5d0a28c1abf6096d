"""Training as its own flow, so it can run as a deployment on a GPU work pool."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.experiment import store_root
from llmsynth_core.config import EvaluationConfig, RuntimeConfig, TrainingConfig
from llmsynth_core.training_job import TrainingJob
from tasks.train import train_evaluate_task


@flow(name="train", flow_run_name="train {job.name}", log_prints=True)
def train(
    job: TrainingJob,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    runtime: RuntimeConfig,
    output_dir: str = "llmsynth-output",
) -> dict[str, Any]:
    """Fine-tune one encoder on one data source and evaluate it on the real test split.

    Args:
        job: The model to train, as the pipeline planned it: task, encoder, data source
            (real, a synthetic set of a generation mode, or a mixture), seed, the generation
            and data-snapshot refs in the artifact store, and the rows per label.
        training: The experiment's training settings (training.* of its config).
        evaluation: The experiment's evaluation settings (evaluation.* of its config).
        runtime: The experiment's runtime settings; inference_batch_size applies here.
        output_dir: Output directory or object-store URI shared with the pipeline.

    Returns:
        The metrics artifact reference (uri, schema_name, rows, sha256) as a dict.
    """
    ref = train_evaluate_task(job, training, evaluation, runtime, store_root(output_dir))
    return ref.model_dump(mode="json")
