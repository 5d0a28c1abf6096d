"""Generation on its own: every label chunk of every task and mode, then one collected dataset."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import AsyncClientContext

from flows.experiment import new_run_dir, publish_run, snapshot_data, store_root
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import experiment_specs
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef
from tasks.collect import collect_generations_task
from tasks.generate import generate_label_task
from tasks.llm_server import llm_endpoints
from tasks.snapshot import DataSnapshot

# Label chunks by (task, mode, replicate): replicate r is the synthetic set generated with
# llm.seed + r (generation.replicates sets; one by default).
Generations = dict[tuple[str, str, int], list[ArtifactRef]]


def generate_all(
    specs: list[TaskSpec],
    config: ExperimentConfig,
    snapshots: dict[str, DataSnapshot],
    output_dir: str,
) -> Generations:
    """Run the label chunks `runtime.parallel_chunks` at a time; refs by (task, mode, replicate).

    An embedded generator gets one server per chunk of a wave (`llm_endpoints`), chunk i of a
    wave on server i, so each server runs one conversation at a time and reuses its prefix.
    A wave's chunks are task runs awaited together on one event loop (see
    `generate_label_task`); the wave ends when all of them have, so a chunk still running when
    another fails (a budget stop, a bad key) keeps every reply it is waiting for.
    """
    logger = get_run_logger()
    root = store_root(output_dir)
    chunks = [
        (spec, mode, label, replicate)
        for replicate in range(config.generation.replicates)
        for spec in specs
        for mode in config.generation.modes
        for label in spec.label_names
    ]
    generations: Generations = {}
    llm, runtime = config.llm, config.runtime
    servers = min(runtime.parallel_chunks, os.cpu_count() or 1)
    with llm_endpoints(llm.endpoint, llm.embedded_model, runtime.embedded_port, servers) as urls:
        logger.info("generating with %s at %s", llm.model, ", ".join(urls))
        wave = runtime.parallel_chunks
        for start in range(0, len(chunks), wave):
            batch = chunks[start : start + wave]
            calls = [
                generate_label_task(
                    spec,
                    config.for_replicate(replicate),
                    mode,
                    label,
                    snapshots[spec.id],
                    root,
                    urls[i % len(urls)],
                )
                for i, (spec, mode, label, replicate) in enumerate(batch)
            ]
            for (spec, mode, _, replicate), ref in zip(batch, _await_all(calls), strict=True):
                generations.setdefault((spec.id, mode, replicate), []).append(ref)
    return generations


def _await_all(calls: list[Coroutine[Any, Any, ArtifactRef]]) -> list[ArtifactRef]:
    """Run the task calls concurrently to the end; then raise the first failure, if any."""

    async def gather() -> list[ArtifactRef | BaseException]:
        # One Prefect API client for the wave's task runs; each would otherwise open its own.
        async with AsyncClientContext.get_or_create():
            return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(gather())
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]


@flow(name="generate", log_prints=True)
def generate(config: ExperimentConfig, data_dir: str, output_dir: str = "llmsynth-output") -> str:
    """Generate the experiment's synthetic data; returns the run directory holding it."""
    specs = experiment_specs(config)
    snapshots = snapshot_data(specs, config, data_dir, output_dir)
    generations = generate_all(specs, config, snapshots, output_dir)
    run_dir = new_run_dir(config, output_dir)
    refs = [ref for chunk in generations.values() for ref in chunk]
    collect_generations_task(config, refs, str(run_dir))
    location = publish_run(run_dir, output_dir)
    get_run_logger().info("synthetic data in %s", location)
    return location
