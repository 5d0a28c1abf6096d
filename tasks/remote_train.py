"""Prefect task: train one model through the training deployment and read its metrics back.

Flow results are not shared between machines, so the metrics come back through the
content-addressed store: the training flow writes under `metrics_key`, and so we read there.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.errors import LlmsynthError
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore
from tasks.snapshot import DataSnapshot
from tasks.train import metrics_key


class TrainingRunFailed(LlmsynthError):
    """A training flow run on the training work pool did not leave its metrics."""


@task(
    name="train-remote",
    task_run_name="dispatch {spec.id}/{source}/{model_name}/seed{seed}/replicate{replicate}",
    cache_policy=NO_CACHE,  # the content-addressed store is the cache
)
def train_remote_task(
    deployment: str,
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
    snapshot: DataSnapshot,
    output_dir: str,
    store_root: str,
    seed: int,
    replicate: int = 0,
    counts: dict[str, int] | None = None,
) -> ArtifactRef:
    """Run `deployment` (the `train` flow) for one model and source; wait; return its metrics."""
    store = ArtifactStore(store_root)
    key = metrics_key(
        spec, config, model_name, source, generations, seed, snapshot, replicate, counts
    )
    found = store.existing("metrics", key)
    if found is not None:
        return found
    parameters = training_parameters(
        spec, config, model_name, source, generations, snapshot, output_dir, seed, replicate, counts
    )
    run = run_deployment(deployment, parameters=parameters, timeout=None)
    assert isinstance(run, FlowRun)  # called from sync code: the flow run, not a coroutine
    state = run.state
    if state is None or not state.is_completed():
        raise TrainingRunFailed(
            f"training flow run {run.name!r} ({run.id}) of deployment {deployment!r} ended "
            f"{state.name if state else 'without a state'}; open it in the Prefect UI for its "
            "logs, fix the cause and rerun (finished models are reused)"
        )
    found = store.existing("metrics", key)
    if found is None:
        raise TrainingRunFailed(
            f"training flow run {run.name!r} ({run.id}) completed but no metrics are under "
            f"{store.location('metrics', key)}; the training workers must use the same "
            "artifact store (set LLMSYNTH_OUTPUT_DIR to a shared path or object-store URI)"
        )
    get_run_logger().info(
        "%s/%s/%s/seed %d trained by flow run %s", spec.id, source, model_name, seed, run.name
    )
    return found


def training_parameters(
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
    snapshot: DataSnapshot,
    output_dir: str,
    seed: int,
    replicate: int = 0,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The `train` flow's parameters as JSON: refs into the store, no local paths of data."""
    return {
        "spec": spec.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "model_name": model_name,
        "source": source,
        "generations": [ref.model_dump(mode="json") for ref in generations],
        "snapshot": snapshot.model_dump(mode="json"),
        "output_dir": output_dir,
        "seed": seed,
        "replicate": replicate,
        "counts": counts,
    }
