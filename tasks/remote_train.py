"""Prefect task: train one job through the training deployment and read its metrics back.

Flow results are not shared between machines, so the metrics come back through the
content-addressed store: the training flow writes under the job's key, and so we read there.
A training run whose machine or process died ends Crashed (Prefect's crash automation, see
flows/deploy.py, marks a run whose heartbeats stop); that run is started again, up to
CRASH_RETRIES times, and any free worker of the pool takes it.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from llmsynth_core.config import EvaluationConfig, RuntimeConfig, TrainingConfig
from llmsynth_core.errors import LlmsynthError
from llmsynth_core.training_job import TrainingJob
from tasks.artifacts import ArtifactRef, ArtifactStore, artifact_root

CRASH_RETRIES = 2


class TrainingRunFailed(LlmsynthError):
    """A training flow run on the training work pool did not leave its metrics."""


class TrainingRunCrashed(TrainingRunFailed):
    """A training flow run ended Crashed: its process or machine died, not its code."""


def crashed_runs_only(task: Any, task_run: Any, state: Any) -> bool:
    """Start the training run again only if it crashed; a failure in its code would recur."""
    try:
        state.result()
    except TrainingRunCrashed:
        return True
    except Exception:
        return False
    return False


@task(
    name="train-remote",
    task_run_name="dispatch {job.name}",
    cache_policy=NO_CACHE,  # the content-addressed store is the cache
    retries=CRASH_RETRIES,
    retry_delay_seconds=2,
    retry_condition_fn=crashed_runs_only,
)
def train_remote_task(
    deployment: str,
    job: TrainingJob,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    runtime: RuntimeConfig,
    output_dir: str,
) -> ArtifactRef:
    """Run `deployment` (the `train` flow) for one job; wait; return its metrics from the
    store under `output_dir`, which is also the cache: a finished job is not dispatched."""
    store = ArtifactStore(artifact_root(output_dir))
    key = job.key(training, evaluation)
    found = store.existing("metrics", key)
    if found is not None:
        return found
    parameters = training_parameters(job, training, evaluation, runtime, output_dir)
    run = run_deployment(deployment, parameters=parameters, timeout=None)
    assert isinstance(run, FlowRun)  # called from sync code: the flow run, not a coroutine
    state = run.state
    if state is not None and state.is_crashed():
        raise TrainingRunCrashed(
            f"training flow run {run.name!r} ({run.id}) of deployment {deployment!r} crashed "
            f"({state.message or 'no message'}): its process or worker machine died; started "
            f"again up to {CRASH_RETRIES} times (finished models are reused)"
        )
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
    get_run_logger().info("%s trained by flow run %s", job.name, run.name)
    return found


def training_parameters(
    job: TrainingJob,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    runtime: RuntimeConfig,
    output_dir: str,
) -> dict[str, Any]:
    """The `train` flow's parameters as JSON: refs into the store, no local paths of data."""
    stages = {"job": job, "training": training, "evaluation": evaluation, "runtime": runtime}
    return {
        **{name: model.model_dump(mode="json") for name, model in stages.items()},
        "output_dir": output_dir,
    }
