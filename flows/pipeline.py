"""The whole DAG: validate data, generate, train and evaluate per source, then analyse."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.futures import wait

from flows.experiment import new_run_dir, publish_run, resolve_specs, store_root, validate_data
from flows.generate import Generations, generate_all
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.size_matching import LabelSizes, matched_counts
from llmsynth_core.taskspec import TaskSpec
from tasks.analyze import analyze_task
from tasks.annotate import annotate_task
from tasks.artifacts import ArtifactRef
from tasks.collect import collect_generations_task
from tasks.diversity import diversity_task
from tasks.llm_server import llm_endpoint
from tasks.remote_train import train_remote_task
from tasks.size_matching import size_match_task
from tasks.train import train_evaluate_task


def annotate_all(
    specs: list[TaskSpec], config: ExperimentConfig, data_dir: str, output_dir: str
) -> list[ArtifactRef]:
    """The LLM annotator panel, for tasks whose test split has no human agreement."""
    todo = [spec for spec in specs if not spec.data.agreement_column]
    if not config.analysis.annotator_panel or not todo:
        return []
    llm = config.llm
    with llm_endpoint(llm.endpoint, llm.embedded_model, config.runtime.embedded_port) as url:
        return [annotate_task(spec, config, data_dir, store_root(output_dir), url) for spec in todo]


def train_all(
    specs: list[TaskSpec],
    config: ExperimentConfig,
    generations: Generations,
    data_dir: str,
    output_dir: str,
    sizes: dict[str, list[LabelSizes]],
) -> list[ArtifactRef]:
    """One model per (task, encoder, source, seed): in this process, or on the training pool;
    `sizes` (by task) sets the rows per label each source trains on."""
    jobs = [
        (
            spec,
            model_name,
            source,
            generations.get((spec.id, _mode_of(config, source)), []),
            seed,
            matched_counts(sizes[spec.id], _mode_of(config, source)),
        )
        for spec in specs
        for model_name in config.training.models
        for source in config.sources
        for seed in config.training.seeds
    ]
    root = store_root(output_dir)
    deployment = config.runtime.training_deployment
    if deployment is None:
        return [
            train_evaluate_task(spec, config, model_name, source, refs, data_dir, root, seed, n)
            for spec, model_name, source, refs, seed, n in jobs
        ]
    # All at once: the training pool's workers and concurrency limits decide how many run.
    futures = [
        train_remote_task.submit(
            deployment, spec, config, model_name, source, refs, data_dir, output_dir, root, seed, n
        )
        for spec, model_name, source, refs, seed, n in jobs
    ]
    wait(futures)
    return [future.result() for future in futures]


def _mode_of(config: ExperimentConfig, source: str) -> str:
    """The generation mode whose rows a training source uses (a mixture names its mode)."""
    mixture = config.mixture(source)
    return mixture.mode if mixture else source


@flow(name="pipeline", log_prints=True)
def pipeline(
    config: ExperimentConfig,
    data_dir: str,
    output_dir: str = "llmsynth-output",
    model: str | None = None,
) -> str:
    """Run one experiment end to end; returns the run directory holding results.md.

    Args:
        config: The experiment (tasks, generator, generation, training, evaluation, analysis).
        data_dir: Directory holding <task>/{train,test}.parquet on the machine that runs this.
        output_dir: Local directory or object-store URI (s3://, gs://, az://) for artifacts
            and runs; content-addressed, so reruns reuse finished work.
        model: Generator model id that replaces config.llm.model, e.g. from the
            llmsynth.model.changed event; empty keeps the config's.
    """
    if model:
        config = config.model_copy(update={"llm": config.llm.model_copy(update={"model": model})})
    specs = resolve_specs(config)
    validate_data(specs, Path(data_dir))
    run_dir = new_run_dir(config, output_dir)
    generations = generate_all(specs, config, data_dir, output_dir)
    refs = [ref for chunk in generations.values() for ref in chunk]
    collect_generations_task(config, refs, str(run_dir))
    annotations = annotate_all(specs, config, data_dir, output_dir)
    sizes = {
        spec.id: size_match_task(
            spec,
            config,
            {mode: refs for (task, mode), refs in generations.items() if task == spec.id},
            data_dir,
        )
        for spec in specs
    }
    metrics = train_all(specs, config, generations, data_dir, output_dir, sizes)
    diversity = [
        diversity_task(
            spec,
            config,
            {mode: refs for (task, mode), refs in generations.items() if task == spec.id},
            data_dir,
            store_root(output_dir),
        )
        for spec in specs
    ]
    size_matching = [size for task_sizes in sizes.values() for size in task_sizes]
    analyze_task(config, metrics, str(run_dir), diversity, data_dir, annotations, size_matching)
    location = publish_run(run_dir, output_dir)
    get_run_logger().info("results in %s", location)
    return location
