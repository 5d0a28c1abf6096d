"""Work pools and deployments on a Prefect server: what `llmsynth pools create` and `deploy` do."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from llmsynth_core.errors import LlmsynthError

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "deployments" / "prefect.yaml"
# Deploy-time values that prefect.yaml fills in; the workers must see the same paths.
DEPLOY_ENV = ("LLMSYNTH_HOME", "LLMSYNTH_DATA_DIR", "LLMSYNTH_OUTPUT_DIR")


@dataclass(frozen=True)
class Pool:
    name: str
    description: str
    queues: tuple[str, ...] = ()


POOLS = (
    Pool("cpu-pool", "llmsynth generation, analysis and the pipeline itself"),
    Pool("gpu-pool", "llmsynth training; one worker per GPU, --limit 1", ("training",)),
)


def create_pools() -> list[str]:
    """Create the process work pools and their queues; existing ones are left as they are."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    created = []
    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        for pool in POOLS:
            try:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=pool.name,
                        type="process",
                        description=pool.description,
                        base_job_template=template,
                    )
                )
                created.append(pool.name)
            except ObjectAlreadyExists:
                pass
            for queue in pool.queues:
                try:
                    client.create_work_queue(name=queue, work_pool_name=pool.name)
                    created.append(f"{pool.name}/{queue}")
                except ObjectAlreadyExists:
                    pass
    return created


def deploy_command(prefect_file: Path = PREFECT_FILE) -> list[str]:
    prefect = Path(sys.executable).with_name("prefect")
    program = [str(prefect)] if prefect.exists() else [sys.executable, "-m", "prefect"]
    return [*program, "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)]


def deploy_env() -> dict[str, str]:
    """The environment for `prefect deploy`: LLMSYNTH_HOME defaults to this checkout.

    prefect.yaml leaves a `{{ $VAR }}` whose variable is unset as literal text, so the
    required ones are checked here.
    """
    env = {**os.environ}
    env.setdefault("LLMSYNTH_HOME", str(REPO))
    # Optional: watch-models' endpoint; empty rather than a literal template when unset.
    env.setdefault("LLMSYNTH_LLM_ENDPOINT", "")
    missing = [name for name in DEPLOY_ENV if not env.get(name)]
    if missing:
        raise LlmsynthError(
            f"set {', '.join(missing)} before deploying: prefect.yaml fills the deployments' "
            "data and output locations from them, as the workers will see them (e.g. "
            "LLMSYNTH_OUTPUT_DIR=s3://bucket/llmsynth)"
        )
    return env


def deploy(prefect_file: Path = PREFECT_FILE) -> None:
    """Register every deployment in prefect.yaml with the server at PREFECT_API_URL."""
    result = subprocess.run(deploy_command(prefect_file), cwd=REPO, env=deploy_env(), check=False)
    if result.returncode != 0:
        raise LlmsynthError(
            f"prefect deploy exited with {result.returncode} (its output is above); check "
            "PREFECT_API_URL and that `llmsynth pools create` ran"
        )
