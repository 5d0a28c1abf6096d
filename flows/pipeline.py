"""The whole DAG: validate data, generate, train and evaluate per source, then analyse."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import wait

from flows.experiment import new_run_dir, publish_run, snapshot_data, store_root
from flows.generate import Generations, generate_all
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import experiment_specs
from llmsynth_core.size_matching import LabelSizes, synthetic_set
from llmsynth_core.taskspec import TaskSpec
from llmsynth_core.training_job import plan_jobs
from tasks.analyze import analyze_task
from tasks.annotate import annotate_task
from tasks.artifacts import ArtifactRef
from tasks.collect import collect_generations_task
from tasks.diversity import diversity_task
from tasks.llm_server import llm_endpoint
from tasks.remote_train import train_remote_task
from tasks.size_matching import size_match_task
from tasks.snapshot import DataSnapshot
from tasks.train import train_evaluate_task


def annotate_all(
    specs: list[TaskSpec],
    config: ExperimentConfig,
    snapshots: dict[str, DataSnapshot],
    output_dir: str,
) -> list[ArtifactRef]:
    """The LLM annotator panel, for tasks whose test split has no human agreement; served by
    analysis.annotator_llm's endpoint, else the generator's."""
    todo = [spec for spec in specs if not spec.data.agreement_column]
    if not config.analysis.annotator_panel or not todo:
        return []
    llm = config.panel_llm
    with llm_endpoint(llm.endpoint, llm.embedded_model, config.runtime.embedded_port) as url:
        root = store_root(output_dir)
        return [annotate_task(spec, config, snapshots[spec.id], root, url) for spec in todo]


def train_all(
    specs: list[TaskSpec],
    config: ExperimentConfig,
    generations: Generations,
    snapshots: dict[str, DataSnapshot],
    output_dir: str,
    sizes: dict[str, list[LabelSizes]],
) -> list[ArtifactRef]:
    """One model per (task, encoder, source, synthetic replicate, seed): in this process, or
    on the training pool; `sizes` (by task) sets the rows per label each source trains on."""
    jobs = plan_jobs(specs, config, generations, snapshots, sizes)
    stages = (config.training, config.evaluation, config.runtime)
    deployment = config.runtime.training_deployment
    if deployment is None:
        root = store_root(output_dir)
        return [train_evaluate_task(job, *stages, root) for job in jobs]
    # All at once: the training pool's workers and concurrency limits decide how many run.
    futures = [train_remote_task.submit(deployment, job, *stages, output_dir) for job in jobs]
    wait(futures)
    return [future.result() for future in futures]


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
        data_dir: Directory or fsspec URI (s3://...) holding <task>/{train,test}.parquet; read
            once into content-addressed snapshots that every later stage uses.
        output_dir: Local directory or object-store URI (s3://, gs://, az://) for artifacts
            and runs; content-addressed, so reruns reuse finished work.
        model: Generator model id that replaces config.llm.model, e.g. from the
            llmsynth.model.changed event; empty keeps the config's.
    """
    if model:
        config = config.model_copy(update={"llm": config.llm.model_copy(update={"model": model})})
    specs = experiment_specs(config)
    snapshots = snapshot_data(specs, config, data_dir, output_dir)
    run_dir = new_run_dir(config, output_dir)
    generations = generate_all(specs, config, snapshots, output_dir)
    refs = [ref for chunk in generations.values() for ref in chunk]
    collect_generations_task(config, refs, str(run_dir))
    annotations = annotate_all(specs, config, snapshots, output_dir)
    sizes = {
        spec.id: size_match_task(
            spec,
            config,
            {
                synthetic_set(mode, replicate): refs
                for (task, mode, replicate), refs in generations.items()
                if task == spec.id
            },
            snapshots[spec.id],
        )
        for spec in specs
    }
    metrics = train_all(specs, config, generations, snapshots, output_dir, sizes)
    diversity = [
        diversity_task(
            spec,
            config,
            # Diversity is measured on the first synthetic set of each mode.
            {m: refs for (t, m, r), refs in generations.items() if t == spec.id and r == 0},
            snapshots[spec.id],
            store_root(output_dir),
        )
        for spec in specs
    ]
    size_matching = [size for task_sizes in sizes.values() for size in task_sizes]
    analyze_task(config, metrics, str(run_dir), diversity, data_dir, annotations, size_matching)
    location = publish_run(run_dir, output_dir)
    get_run_logger().info("results in %s", location)
    return location
