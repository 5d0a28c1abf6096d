"""`llmsynth pools create` and `prefect deploy` of deployments/prefect.yaml against a real
(temporary) Prefect server: every deployment lands where the YAML says."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL

from flows.deploy import (
    CRASH_AUTOMATION,
    crash_automation,
    create_pools,
    deploy_command,
    deploy_env,
    ensure_crash_automation,
)
from llmsynth_core.errors import LlmsynthError

REPO = Path(__file__).resolve().parents[2]


def _api(method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{PREFECT_API_URL.value()}{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def test_deploy_needs_the_locations_the_workers_see(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMSYNTH_OUTPUT_DIR", raising=False)
    monkeypatch.setenv("LLMSYNTH_DATA_DIR", "/data")
    with pytest.raises(LlmsynthError, match="LLMSYNTH_OUTPUT_DIR"):
        deploy_env()


@pytest.mark.usefixtures("prefect_harness")
def test_pools_then_prefect_deploy_accepts_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = create_pools()
    assert first == ["cpu-pool", "gpu-pool", "gpu-pool/training"]
    assert create_pools() == [], "creating the pools again changes nothing"
    pools = {pool["name"]: pool for pool in _api("POST", "/work_pools/filter", json={})}
    assert pools["gpu-pool"]["type"] == pools["cpu-pool"]["type"] == "process"
    queues = _api("POST", "/work_pools/gpu-pool/queues/filter", json={})
    assert "training" in {queue["name"] for queue in queues}

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setenv("LLMSYNTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLMSYNTH_OUTPUT_DIR", "s3://bucket/llmsynth")
    monkeypatch.setenv("LLMSYNTH_LLM_ENDPOINT", "http://vllm:8000/v1")
    result = subprocess.run(
        deploy_command(),
        cwd=REPO,
        env=deploy_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    deployments = {d["name"]: d for d in _api("POST", "/deployments/filter", json={})}
    assert set(deployments) == {"pipeline", "generate", "train", "analyze", "watch-models"}
    train = deployments["train"]
    assert (train["work_pool_name"], train["work_queue_name"]) == ("gpu-pool", "training")
    assert train["global_concurrency_limit"]["limit"] == 1
    assert train["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    pipeline = deployments["pipeline"]
    assert pipeline["work_pool_name"] == "cpu-pool"
    assert pipeline["parameters"]["output_dir"] == "s3://bucket/llmsynth"
    assert pipeline["parameters"]["data_dir"] == str(tmp_path / "data")
    # No pull step: workers run the flows of their installed llmsynth package.
    assert pipeline["pull_steps"] == []
    assert pipeline["entrypoint"] == "flows.pipeline:pipeline"
    (schedule,) = pipeline["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * 1"
    assert schedule["active"] is False
    assert deployments["watch-models"]["parameters"]["endpoint"] == "http://vllm:8000/v1"

    automations = _api("POST", "/automations/filter", json={})
    (rerun,) = [a for a in automations if a["trigger"].get("expect") == ["llmsynth.model.changed"]]
    (action,) = rerun["actions"]
    assert action["type"] == "run-deployment"
    assert action["deployment_id"] == pipeline["id"]
    assert "event.payload.model" in str(action["parameters"]["model"])


@pytest.mark.usefixtures("prefect_harness")
def test_the_crash_automation_is_created_once_then_updated() -> None:
    assert ensure_crash_automation(90) == "created"
    assert ensure_crash_automation(120) == "updated"
    found = [
        a for a in _api("POST", "/automations/filter", json={}) if a["name"] == CRASH_AUTOMATION
    ]
    (automation,) = found
    trigger = automation["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == 120.0
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert set(trigger["expect"]) == {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
    }
    assert trigger["match_related"]["prefect.resource.id"] == "prefect.tag.llmsynth"
    (action,) = automation["actions"]
    assert (action["type"], action["state"]) == ("change-flow-run-state", "CRASHED")


def test_a_crash_window_shorter_than_a_heartbeat_is_refused() -> None:
    with pytest.raises(LlmsynthError, match=r"--crash-after 30 is too short.+--crash-after 90"):
        crash_automation(30)
