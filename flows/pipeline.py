"""The whole DAG: validate data, generate, train and evaluate per source, then analyse."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.data import load_split
from llmsynth_core.registry import load_registry, select_tasks
from llmsynth_core.taskspec import TaskSpec
from tasks.analyze import analyze_task
from tasks.artifacts import ArtifactRef
from tasks.generate import generate_label_task
from tasks.llm_server import llm_endpoint
from tasks.train import train_evaluate_task


def resolve_specs(config: ExperimentConfig) -> list[TaskSpec]:
    registry = load_registry(Path(directory) for directory in config.task_dirs)
    return select_tasks(registry, config.tasks)


def validate_data(specs: list[TaskSpec], data_dir: Path) -> None:
    """Fail before any paid or slow work if a split is missing or malformed."""
    for spec in specs:
        load_split(spec, data_dir, "train")
        load_split(spec, data_dir, "test")


@flow(name="pipeline", log_prints=True)
def pipeline(config: ExperimentConfig, data_dir: str, output_dir: str = "llmsynth-output") -> str:
    """Run one experiment end to end; returns the run directory holding results.md."""
    logger = get_run_logger()
    specs = resolve_specs(config)
    validate_data(specs, Path(data_dir))
    out = Path(output_dir).resolve()
    store_root = str(out / "artifacts")
    run_dir = out / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.semantic_hash()[:8]}"
    generations: dict[tuple[str, str], list[ArtifactRef]] = {}
    with llm_endpoint(
        config.llm.endpoint, config.llm.embedded_model, config.runtime.embedded_port
    ) as base_url:
        logger.info("generating with %s at %s", config.llm.model, base_url)
        chunks = [
            (spec, mode, label)
            for spec in specs
            for mode in config.generation.modes
            for label in spec.label_names
        ]
        wave = config.runtime.parallel_chunks
        for start in range(0, len(chunks), wave):
            futures = [
                (
                    spec.id,
                    mode,
                    generate_label_task.submit(
                        spec, config, mode, label, data_dir, store_root, base_url
                    ),
                )
                for spec, mode, label in chunks[start : start + wave]
            ]
            for task_id, mode, future in futures:
                generations.setdefault((task_id, mode), []).append(future.result())
    metrics = [
        train_evaluate_task(
            spec,
            config,
            model_name,
            source,
            generations.get((spec.id, source), []),
            data_dir,
            store_root,
        )
        for spec in specs
        for model_name in config.training.models
        for source in config.sources
    ]
    analyze_task(config, metrics, str(run_dir))
    logger.info("results in %s", run_dir)
    return str(run_dir)
