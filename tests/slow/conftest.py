"""One real Prefect stack per session (server on PostgreSQL), shared by the multi-process and
the UI tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config
from tests.slow.postgres import running_postgres
from tests.slow.stack import BIN, Stack, poll


@dataclass
class RunningStack:
    stack: Stack
    fake: FakeOpenAIServer
    parameters: dict[str, Any]
    data_dir: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.stack.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment_id(self, flow: str, name: str) -> str:
        return str(self.api("GET", f"/deployments/name/{flow}/{name}")["id"])

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [deployment_id]}}}
        runs: list[dict[str, Any]] = self.api("POST", "/flow_runs/filter", json=body)
        return runs

    def flow_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api("GET", f"/flow_runs/{run_id}")
        return run

    def logs(self, run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
        return [entry["message"] for entry in self.api("POST", "/logs/filter", json=body)]

    def describe(self, run_id: str) -> str:
        """Logs of a run and the stack's processes, for assertion messages."""
        tails = "\n".join(
            f"--- {name} ---\n{self.stack.log_tail(name, 2500)}"
            for name in ("server", "cpu-worker", "gpu-worker")
        )
        return "\n".join(self.logs(run_id)[-40:]) + "\n" + tails


def pipeline_parameters(base_url: str, data_dir: Path, output_dir: Path) -> dict[str, Any]:
    """The tiny experiment: one task, zero-shot only, one training step, trained on gpu-pool."""
    config = small_config(base_url, tasks=("ag_news",), per_label=2, max_steps=1)
    generation = config.generation.model_copy(update={"modes": ["zero_shot"]})
    runtime = config.runtime.model_copy(update={"training_deployment": "train/train"})
    config = config.model_copy(update={"generation": generation, "runtime": runtime})
    return {
        "config": config.model_dump(mode="json"),
        "data_dir": str(data_dir),
        "output_dir": str(output_dir),
    }


@pytest.fixture(scope="session")
def prefect_stack(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path
) -> Iterator[RunningStack]:
    with running_postgres() as postgres:
        yield from _stack_on(postgres.url, tmp_path_factory.mktemp("stack"), sample_dir)


def _stack_on(database_url: str, root: Path, sample_dir: Path) -> Iterator[RunningStack]:
    stack = Stack(root, database_url)
    fake = FakeOpenAIServer(models=["fake-model"]).start()
    env = stack.env(sample_dir)
    prefect = str(BIN / "prefect")
    try:
        stack.spawn(
            "server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(stack.port)],
            env,
        )
        stack.wait_healthy()
        stack.run("pools", [str(BIN / "llmsynth"), "pools", "create"], env)
        stack.run("deploy", [str(BIN / "llmsynth"), "deploy"], env)
        running = RunningStack(
            stack,
            fake,
            pipeline_parameters(fake.base_url, sample_dir, stack.output_dir),
            sample_dir,
        )
        # The UI's quick run uses the deployment's defaults: make them the tiny experiment.
        pipeline_id = running.deployment_id("pipeline", "pipeline")
        running.api("PATCH", f"/deployments/{pipeline_id}", json={"parameters": running.parameters})
        stack.spawn(
            "cpu-worker",
            [prefect, "worker", "start", "--pool", "cpu-pool", "--type", "process"],
            env,
        )
        stack.spawn(
            "gpu-worker",
            [
                prefect,
                "worker",
                "start",
                "--pool",
                "gpu-pool",
                "--work-queue",
                "training",
                "--type",
                "process",
                "--limit",
                "1",
            ],
            env,
        )
        # Both workers polling (pools READY), as a user would see before pressing Run.
        ready = poll(
            lambda: all(
                running.api("GET", f"/work_pools/{pool}")["status"] == "READY"
                for pool in ("cpu-pool", "gpu-pool")
            ),
            timeout_s=90,
        )
        assert ready, stack.log_tail("cpu-worker") + stack.log_tail("gpu-worker")
        yield running
    finally:
        stack.stop()
        fake.stop()
