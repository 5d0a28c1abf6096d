"""A real multi-process run: server, a CPU and a GPU-pool worker, the pipeline deployment
training through the train deployment, all on loopback."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.slow.conftest import RunningStack
from tests.slow.stack import BIN, poll

pytestmark = pytest.mark.slow

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def test_pipeline_trains_on_the_gpu_pool(prefect_stack: RunningStack) -> None:
    stack = prefect_stack
    pipeline_id = stack.deployment_id("pipeline", "pipeline")
    # Its own output directory, so that its models are trained here whatever ran before.
    output_dir = stack.stack.root / "output-multiprocess"
    parameters = {**stack.parameters, "output_dir": str(output_dir)}
    run = stack.api(
        "POST", f"/deployments/{pipeline_id}/create_flow_run", json={"parameters": parameters}
    )
    finished = poll(lambda: stack.flow_run(run["id"])["state"]["type"] in FINAL, timeout_s=240)
    state = stack.flow_run(run["id"])["state"]["type"]
    assert finished and state == "COMPLETED", stack.describe(run["id"])
    assert stack.flow_run(run["id"])["work_pool_name"] == "cpu-pool"

    train_runs = [
        train
        for train in stack.flow_runs(stack.deployment_id("train", "train"))
        if train["parent_task_run_id"] is not None  # started by this pipeline's dispatch task
        and stack.api("GET", f"/task_runs/{train['parent_task_run_id']}")["flow_run_id"]
        == run["id"]
    ]
    # One task, sources real and zero_shot, one encoder: two training runs.
    assert len(train_runs) == 2, [r["name"] for r in train_runs]
    for train in train_runs:
        assert train["work_pool_name"] == "gpu-pool"
        assert train["work_queue_name"] == "training"
        assert train["state"]["type"] == "COMPLETED", stack.describe(train["id"])
        assert any(re.search(r"epoch 1/\d+: loss", line) for line in stack.logs(train["id"])), (
            "per-epoch progress must reach the Prefect logs"
        )

    runs = sorted((output_dir / "runs").iterdir())
    assert runs, "no run directory"
    assert "## Results on the real test split\n\nMacro-F1" in (runs[-1] / "results.md").read_text()
    assert (runs[-1] / "report.html").exists()
    artifacts = stack.api(
        "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["llmsynth-results"]}}}
    )
    assert any(a["flow_run_id"] == run["id"] for a in artifacts)


def test_a_failed_training_run_is_named_in_the_error(prefect_stack: RunningStack) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from llmsynth_core.config import ExperimentConfig
    from llmsynth_core.registry import load_registry
    from llmsynth_core.training_job import Provenance, RealSource, TrainingJob
    from tasks.artifacts import artifact_root
    from tasks.remote_train import TrainingRunFailed, train_remote_task
    from tasks.snapshot import snapshot_task

    stack = prefect_stack
    config = ExperimentConfig.model_validate(stack.parameters["config"])
    training = config.training.model_copy(update={"models": ["/nonexistent/encoder"]})
    config = config.model_copy(update={"training": training})
    spec = load_registry([])["ag_news"]
    output_dir = stack.parameters["output_dir"]
    snapshot = snapshot_task.fn(spec, config, str(stack.data_dir), artifact_root(output_dir))
    with (
        temporary_settings({PREFECT_API_URL: stack.stack.api_url}),
        pytest.raises(
            TrainingRunFailed,
            match=r"training flow run 'train ag_news/real/.+' \(.+\) of deployment 'train/train' "
            r"ended Failed",
        ),
    ):
        job = TrainingJob(
            task=spec,
            encoder="/nonexistent/encoder",
            source=RealSource(),
            seed=config.training.seeds[0],
            snapshot=snapshot,
            per_label=config.generation.per_label,
            provenance=Provenance.of(config),
        )
        train_remote_task.fn(
            "train/train", job, config.training, config.evaluation, config.runtime, output_dir
        )


def test_the_model_changed_event_starts_the_pipeline_with_the_new_model(
    prefect_stack: RunningStack,
) -> None:
    """The deployment trigger from prefect.yaml, on the real server's automation services."""
    stack = prefect_stack
    pipeline_id = stack.deployment_id("pipeline", "pipeline")
    before = {run["id"] for run in stack.flow_runs(pipeline_id)}
    env = stack.stack.env(stack.data_dir)
    # Only the trigger is under test: a paused queue keeps the run it starts from executing.
    queue = "/work_pools/cpu-pool/queues/default"
    stack.api("PATCH", queue, json={"is_paused": True})
    try:
        stack.stack.run(
            "emit",
            [
                str(BIN / "prefect"),
                "event",
                "emit",
                "llmsynth.model.changed",
                "--resource-id",
                "llmsynth.endpoint.127.0.0.1:9",
                "--payload",
                json.dumps({"model": "model-from-event"}),
            ],
            env,
        )

        def triggered() -> list[dict[str, Any]]:
            return [run for run in stack.flow_runs(pipeline_id) if run["id"] not in before]

        assert poll(lambda: bool(triggered()), timeout_s=90), "the trigger started no run"
        (run,) = triggered()
        stack.api(
            "POST",
            f"/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "CANCELLED"}, "force": True},
        )
        assert run["parameters"]["model"] == "model-from-event"
        assert run["parameters"]["config"] == stack.parameters["config"], "defaults kept"
    finally:
        stack.api("PATCH", queue, json={"is_paused": False})
