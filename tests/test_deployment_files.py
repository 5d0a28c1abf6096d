"""The deployment files parse and point at real flows (no Docker engine or server needed)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DEPLOYMENTS = {"pipeline", "generate", "train", "analyze", "watch-models"}
COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "PREFECT_SERVER_API_AUTH_STRING": "admin:secret",
    "MINIO_ROOT_PASSWORD": "minio-secret",
}


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return compose


def _prefect_yaml() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    return spec


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_services_have_what_they_need() -> None:
    services = _compose()["services"]
    assert {
        "postgres",
        "prefect-server",
        "minio",
        "minio-init",
        "llm",
        "cpu-worker",
        "gpu-worker",
        "vllm",
    } <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} exposes {port} beyond loopback"
        depends = service.get("depends_on", {})
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        if name != "minio-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"


def test_compose_server_workers_and_storage_are_wired() -> None:
    services = _compose()["services"]
    server = _environment(services["prefect-server"])
    assert server["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "PREFECT_SERVER_API_AUTH_STRING" in server
    for name in ("cpu-worker", "gpu-worker"):
        env = _environment(services[name])
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api", name
        assert "PREFECT_API_AUTH_STRING" in env, name
        assert env["LLMSYNTH_OUTPUT_DIR"].startswith("s3://"), name
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30", name
        assert "LLMSYNTH_HOME" not in env, name
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env), name
        # The shared request cache and budget, its password from PGPASSWORD, never the URL.
        assert env["LLMSYNTH_STATE_DB"].startswith("postgresql+psycopg://prefect@"), name
        assert "PGPASSWORD" in env, name
        assert services[name]["depends_on"]["minio-init"] == {
            "condition": "service_completed_successfully"
        }
    gpu = services["gpu-worker"]
    assert "--work-queue" in gpu["command"] and "training" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    assert "serve" in services["llm"]["command"] and "ports" not in services["llm"]
    assert services["vllm"]["profiles"] == ["vllm"]
    assert "ports" not in services["vllm"]


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker client with the compose plugin here; the structural checks above stand in",
)
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **COMPOSE_ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_builds_a_worker_image() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "build-essential" in dockerfile
    assert 'pip install -e ".[s3,postgres]"' in dockerfile


def _packaged_modules() -> list[str]:
    """The top-level packages the wheel holds (pyproject's setuptools find include)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include: list[str] = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.removesuffix("*") for pattern in include]


def test_prefect_yaml_entrypoints_are_flows_of_the_installed_package() -> None:
    """Module paths, so a worker runs the flows of its installed wheel: no checkout, no pull."""
    spec = _prefect_yaml()
    assert {d["name"] for d in spec["deployments"]} == DEPLOYMENTS
    assert spec["pull"] == [], "workers get the code as an installed package, not a pull step"
    text = (REPO / "deployments" / "prefect.yaml").read_text()
    assert "LLMSYNTH_HOME" not in text and "set_working_directory" not in text
    for deployment in spec["deployments"]:
        assert "pull" not in deployment, deployment["name"]
        path, name = deployment["entrypoint"].split(":")
        assert "/" not in path and not path.endswith(".py"), f"{path} is a file, not a module"
        assert path.split(".")[0] in _packaged_modules(), f"{path} is not in the wheel"
        module = importlib.import_module(path)
        flow = getattr(module, name)
        assert hasattr(flow, "deploy"), f"{deployment['entrypoint']} is not a Prefect flow"
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
        for trigger in deployment.get("triggers", []):
            assert set(trigger.get("parameters", {})) <= set(flow.parameters.properties)


def test_training_runs_one_at_a_time_on_the_gpu_queue() -> None:
    train = next(d for d in _prefect_yaml()["deployments"] if d["name"] == "train")
    assert train["work_pool"] == {"name": "gpu-pool", "work_queue_name": "training"}
    assert train["concurrency_limit"]["limit"] == 1


def test_flow_parameters_are_described_for_the_ui_form() -> None:
    from flows.pipeline import pipeline
    from flows.train import train

    for flow in (pipeline, train):
        for name, schema in flow.parameters.properties.items():
            assert schema.get("description"), f"{flow.name}.{name} has no description"
    experiment = pipeline.parameters.definitions["ExperimentConfig"]["properties"]
    assert experiment["llm"]["$ref"].endswith("/LLMConfig")
    runtime = pipeline.parameters.definitions["RuntimeConfig"]["properties"]
    assert runtime["training_deployment"]["default"] is None
    assert runtime["training_deployment"]["description"]


def test_training_runs_take_a_job_of_snapshot_refs_not_a_data_dir() -> None:
    from flows.train import train
    from llmsynth_core.refs import ArtifactRef, DataSnapshot
    from llmsynth_core.registry import load_registry
    from llmsynth_core.training_job import Provenance, RealSource, TrainingJob
    from tasks.remote_train import training_parameters
    from tests.flows.configs import small_config

    assert "data_dir" not in train.parameters.properties
    job_form = train.parameters.definitions["TrainingJob"]["properties"]
    assert {"task", "encoder", "source", "seed", "generations", "snapshot", "counts"} <= set(
        job_form
    )
    assert all(field.get("description") for field in job_form.values())
    ref = ArtifactRef(
        uri="s3://b/snapshots/k/data.parquet", schema_name="snapshot", rows=9, sha256="a"
    )
    snapshot = DataSnapshot(task="ag_news", train=ref, test=ref.model_copy(update={"sha256": "b"}))
    config = small_config("http://127.0.0.1:9/v1")
    job = TrainingJob(
        task=load_registry()["ag_news"],
        encoder="embedded:tiny",
        source=RealSource(),
        seed=0,
        snapshot=snapshot,
        per_label=config.generation.per_label,
        provenance=Provenance.of(config),
    )
    parameters = training_parameters(
        job, config.training, config.evaluation, config.runtime, "s3://b"
    )
    # What the deployment's flow run receives: JSON in, the same job (snapshot refs) out.
    received = train.validate_parameters(json.loads(json.dumps(parameters)))
    assert received["job"] == job and received["training"] == config.training
    assert isinstance(train.flow_run_name, str)
    assert (
        train.flow_run_name.format(**received)
        == "train ag_news/real/embedded:tiny/seed0/replicate0"
    )
