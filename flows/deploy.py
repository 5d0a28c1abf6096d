"""Work pools, deployments and the crash automation on a Prefect server: what `llmsynth pools
create` and `llmsynth deploy` do."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from llmsynth_core.errors import LlmsynthError

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "deployments" / "prefect.yaml"
# Deploy-time values that prefect.yaml fills in: the data and output locations as the workers
# see them (object-store URIs when the workers share no disk). The code itself reaches the
# workers as an installed package: the entrypoints are module paths and there is no pull step.
DEPLOY_ENV = ("LLMSYNTH_DATA_DIR", "LLMSYNTH_OUTPUT_DIR")
CRASH_AUTOMATION = "llmsynth: mark flow runs whose heartbeats stop as crashed"
# Prefect's least heartbeat interval; a crash window must hold more than one heartbeat.
MIN_HEARTBEAT_S = 30


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
    """The environment for `prefect deploy`.

    prefect.yaml leaves a `{{ $VAR }}` whose variable is unset as literal text, so the
    required ones are checked here.
    """
    env = {**os.environ}
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


def crash_automation(crash_after_s: int) -> AutomationCore:
    """Prefect's zombie-run automation, for llmsynth's flow runs: a run whose heartbeats stop
    for `crash_after_s` seconds (its process or machine died) is set to Crashed.

    The pipeline's dispatch task then starts a crashed training run again on any free worker
    (tasks/remote_train.py). Workers must send heartbeats more often than `crash_after_s`:
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 (Prefect's default is 180 s).
    """
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    if crash_after_s <= MIN_HEARTBEAT_S:
        raise LlmsynthError(
            f"--crash-after {crash_after_s} is too short: flow runs send a heartbeat every "
            f"PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (at least {MIN_HEARTBEAT_S}); give "
            "about three heartbeats, e.g. --crash-after 90 with a frequency of 30"
        )
    final = ("Completed", "Failed", "Cancelled", "Crashed")
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore(
        name=CRASH_AUTOMATION,
        description=(
            f"A flow run tagged llmsynth that sends no heartbeat for {crash_after_s} s has "
            "lost its process or machine: mark it Crashed, so that the pipeline starts a "
            "crashed training run again on another worker. Set by `llmsynth deploy "
            "--crash-after`."
        ),
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.llmsynth"}
            ),
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in final)},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crash_after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {crash_after_s} s: its process or machine died",
            )
        ],
    )


def ensure_crash_automation(crash_after_s: int) -> str:
    """Create the crash automation, or update it to this window; says which it did."""
    from prefect.client.orchestration import get_client

    automation = crash_automation(crash_after_s)
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(CRASH_AUTOMATION)
        for existing in found:
            assert existing.id is not None
            client.update_automation(existing.id, automation)
        if found:
            return "updated"
        client.create_automation(automation)
        return "created"
