"""Generation on its own: every label chunk of every task and mode, then one collected dataset."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.futures import wait

from flows.experiment import new_run_dir, publish_run, resolve_specs, store_root, validate_data
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef
from tasks.collect import collect_generations_task
from tasks.generate import generate_label_task
from tasks.llm_server import llm_endpoint

Generations = dict[tuple[str, str], list[ArtifactRef]]


def generate_all(
    specs: list[TaskSpec], config: ExperimentConfig, data_dir: str, output_dir: str
) -> Generations:
    """Run the label chunks `runtime.parallel_chunks` at a time; refs by (task, mode)."""
    logger = get_run_logger()
    root = store_root(output_dir)
    chunks = [
        (spec, mode, label)
        for spec in specs
        for mode in config.generation.modes
        for label in spec.label_names
    ]
    generations: Generations = {}
    with llm_endpoint(
        config.llm.endpoint, config.llm.embedded_model, config.runtime.embedded_port
    ) as base_url:
        logger.info("generating with %s at %s", config.llm.model, base_url)
        wave = config.runtime.parallel_chunks
        for start in range(0, len(chunks), wave):
            futures = [
                (
                    spec.id,
                    mode,
                    generate_label_task.submit(spec, config, mode, label, data_dir, root, base_url),
                )
                for spec, mode, label in chunks[start : start + wave]
            ]
            # Let the whole wave finish before raising (a budget stop, a bad key), so a chunk
            # still running keeps every reply it is waiting for.
            wait([future for _, _, future in futures])
            for task_id, mode, future in futures:
                generations.setdefault((task_id, mode), []).append(future.result())
    return generations


@flow(name="generate", log_prints=True)
def generate(config: ExperimentConfig, data_dir: str, output_dir: str = "llmsynth-output") -> str:
    """Generate the experiment's synthetic data; returns the run directory holding it."""
    specs = resolve_specs(config)
    validate_data(specs, Path(data_dir))
    generations = generate_all(specs, config, data_dir, output_dir)
    run_dir = new_run_dir(config, output_dir)
    refs = [ref for chunk in generations.values() for ref in chunk]
    collect_generations_task(config, refs, str(run_dir))
    location = publish_run(run_dir, output_dir)
    get_run_logger().info("synthetic data in %s", location)
    return location
