"""Generation on its own: every label chunk of every task and mode, then one collected dataset."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import AsyncClientContext

from flows.experiment import new_run_dir, publish_run, snapshot_data, store_root
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import experiment_specs
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef
from tasks.batch_client import require_batch_api
from tasks.collect import collect_generations_task
from tasks.gc_tuning import generation_gc
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

    Each of `parallel_chunks` lanes takes the next chunk as soon as its last one ends (waves
    of chunks left a server idle while a slower chunk of its wave finished). An embedded
    generator gets one server per lane (`llm_endpoints`), so each server runs one conversation
    at a time and reuses its prefix. Chunks are task runs on one event loop (see
    `generate_label_task`); after a failure (a budget stop, a bad key) no lane starts a new
    chunk, the chunks running finish and keep every reply they wait for, then it is raised.
    With `runtime.batch` the endpoint's Batch API is probed first, and every chunk runs at
    once, since a chunk waiting on its batch only polls.
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
    llm, runtime = config.llm, config.runtime
    # A chunk waiting on a batch costs nothing: with runtime.batch every chunk waits at once.
    parallel = len(chunks) if runtime.batch else runtime.parallel_chunks
    if runtime.batch:
        require_batch_api(llm, runtime.request_timeout_s)
    servers = min(parallel, os.cpu_count() or 1)
    with llm_endpoints(llm.endpoint, llm.embedded_model, runtime.embedded_port, servers) as urls:
        how = "in batches" if runtime.batch else "live"
        logger.info("generating with %s at %s, %s", llm.model, ", ".join(urls), how)
        lanes = [urls[i % len(urls)] for i in range(parallel)]

        def call(index: int, url: str) -> Coroutine[Any, Any, ArtifactRef]:
            spec, mode, label, replicate = chunks[index]
            replica = config.for_replicate(replicate)
            return generate_label_task(spec, replica, mode, label, snapshots[spec.id], root, url)

        refs = _run_lanes(len(chunks), lanes, call)
    generations: Generations = {}
    for (spec, mode, _, replicate), ref in zip(chunks, refs, strict=True):
        generations.setdefault((spec.id, mode, replicate), []).append(ref)
    return generations


def _run_lanes(
    count: int, lanes: list[str], call: Callable[[int, str], Coroutine[Any, Any, ArtifactRef]]
) -> list[ArtifactRef]:
    """Calls 0..count-1, each lane (an endpoint URL) running one at a time and taking the next
    index when free; results in index order, or the first failure once every lane stopped."""
    results: list[ArtifactRef | None] = [None] * count
    failures: list[BaseException] = []
    pending = iter(range(count))

    async def lane(url: str) -> None:
        for index in pending:
            if failures:
                return
            try:
                results[index] = await call(index, url)
            except Exception as exc:  # raised below, once the other lanes have stopped
                failures.append(exc)
                return

    async def run() -> None:
        # One Prefect API client for every task run; each would otherwise open its own.
        async with AsyncClientContext.get_or_create():
            await asyncio.gather(*(lane(url) for url in lanes))

    with generation_gc():  # the collector's share of a request's CPU (tasks/gc_tuning.py)
        asyncio.run(run())
    if failures:
        raise failures[0]
    return [ref for ref in results if ref is not None]


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
