"""llmsynth at scale on three test hosts that share nothing but the network (tests/slow/hosts.py).

The server host runs PostgreSQL, the Prefect server on it, moto's standalone S3 server (the
object store) and the fake OpenAI-compatible server, and holds the checkout: from there the
operator creates the pools, deploys (with the crash automation) and pushes the data. Each
worker host runs one cpu-pool and one gpu-pool worker from a venv with the project's wheel
installed (tests/slow/installed.py), in its own empty working directory, HOME and TMPDIR, with
nothing but environment variables pointing at the server host. The data reach them only
through the store: the test pushes a temporary copy of sample/ and deletes it before any
worker starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.slow.conftest import pipeline_parameters as tiny_pipeline
from tests.slow.hosts import Host, Network, network
from tests.slow.installed import InstalledEnv, build_wheel, installed_env
from tests.slow.postgres import Postgres, running_postgres
from tests.slow.stack import REPO, free_ports, poll

BIN = Path(sys.executable).parent
BUCKET = "llmsynth"
WORKER_HOSTS = ("worker-a", "worker-b")
POOLS = {"cpu": ["--pool", "cpu-pool"], "gpu": ["--pool", "gpu-pool", "--work-queue", "training"]}
# The fake LLM answers each request after this long, as a remote endpoint would.
LLM_LATENCY_S = 0.05
# How long a flow run may go without a heartbeat before it counts as crashed (the README says
# 90 for real clusters; the test waits less). Flow runs beat every 30 s, Prefect's least.
CRASH_AFTER_S = 60
HEARTBEAT_S = 30


@dataclass
class HostsStack:
    net: Network
    root: Path
    installed: InstalledEnv
    postgres: Postgres
    ports: int  # the first of four free ports: Prefect, S3, the fake LLM (one spare)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_files: list[IO[bytes]] = field(default_factory=list)

    @property
    def server(self) -> Host:
        return self.net.hosts["server"]

    @property
    def api_url(self) -> str:
        return f"http://{self.server.address}:{self.ports}/api"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.server.address}:{self.ports + 1}"

    @property
    def llm_url(self) -> str:
        return f"http://{self.server.address}:{self.ports + 2}/v1"

    @property
    def state_db(self) -> str:
        """The request cache and budget every worker shares: the Prefect server's PostgreSQL
        database, as the README suggests (trust auth on the test network: no password)."""
        return self.postgres.url.replace("+asyncpg", "+psycopg")

    @property
    def request_log(self) -> Path:
        """Every request the fake LLM received, a JSON line each (path and body)."""
        return self.root / "llm-requests.jsonl"

    @property
    def data_uri(self) -> str:
        return f"s3://{BUCKET}/data"

    def output_uri(self, name: str) -> str:
        return f"s3://{BUCKET}/{name}"

    def home(self, host: str) -> Path:
        """A host's own directory: its HOME, TMPDIR and the workers' working directory."""
        path = self.root / host
        (path / "tmp").mkdir(parents=True, exist_ok=True)
        return path

    # -- environments --------------------------------------------------------------------------

    def store_env(self) -> dict[str, str]:
        """What any host needs to reach the store (dummy keys: moto accepts any)."""
        return {
            "AWS_ACCESS_KEY_ID": "llmsynth-test",
            "AWS_SECRET_ACCESS_KEY": "llmsynth-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.s3_endpoint,
        }

    def host_env(self, host: str, path: str) -> dict[str, str]:
        home = self.home(host)
        return {
            "PATH": path,
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "LANG": "C.UTF-8",
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "LLMSYNTH_DATA_DIR": self.data_uri,
            "LLMSYNTH_OUTPUT_DIR": self.output_uri("output"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            **self.store_env(),
        }

    def server_env(self) -> dict[str, str]:
        """The operator's shell on the server host: the checkout's environment."""
        return {
            **self.host_env("server", f"{BIN}:/usr/bin:/bin:/usr/sbin:/sbin"),
            "PYTHONPATH": str(REPO),
            "PREFECT_API_DATABASE_CONNECTION_URL": self.postgres.url,
            "PREFECT_SERVER_API_HOST": self.server.address,
            "PREFECT_SERVER_API_PORT": str(self.ports),
            # No dashboard: copying its files is the slowest part of a start on a busy machine.
            "PREFECT_UI_ENABLED": "false",
        }

    def worker_env(self, host: str) -> dict[str, str]:
        """A worker host's: the installed venv first on PATH, no checkout, no data directory."""
        return {
            **self.host_env(host, f"{self.installed.bin}:/usr/bin:/bin"),
            "LLMSYNTH_STATE_DB": self.state_db,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
            # Workers poll more often than the default 15 s so the tests do not wait it out.
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "10",
        }

    # -- processes -----------------------------------------------------------------------------

    def spawn(
        self, host: str, name: str, argv: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        self.log_files.append(log)
        process = subprocess.Popen(
            self.net.hosts[host].command(argv),
            cwd=self.home(host),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, flow-run processes included
        )
        self.processes[name] = process
        return process

    def run_on_server(self, name: str, argv: list[str]) -> str:
        """A command the operator types on the server host; its output, or an assertion."""
        done = subprocess.run(
            self.server.command(argv),
            cwd=self.home("server"),
            env=self.server_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        (self.root / f"{name}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_prefect_server(self) -> None:
        argv = [str(BIN / "prefect"), "server", "start", "--host", self.server.address]
        self.spawn(
            "server", "prefect-server", [*argv, "--port", str(self.ports)], self.server_env()
        )
        self.wait_healthy()

    def stop_process(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal a process's group (a worker with its flow runs) and wait until it is gone."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def start_worker(self, host: str, pool: str) -> None:
        name = f"{pool}-{host}"  # also the worker's name in Prefect: flow runs carry it
        argv = [str(self.installed.python), "-m", "prefect", "worker", "start", *POOLS[pool]]
        argv += ["--type", "process", "--name", name]
        if pool == "gpu":
            argv += ["--limit", "1"]
        self.spawn(host, name, argv, self.worker_env(host))

    def wait_healthy(self, timeout_s: float = 300.0) -> None:
        server = self.processes["prefect-server"]

        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"prefect server exited:\n{self.log_tail('prefect-server')}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.api_url}/health", timeout=3).status_code == 200
            return False

        assert poll(healthy, timeout_s, every_s=0.5), f"prefect server not healthy in {timeout_s}s"

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.processes[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for log in self.log_files:
            log.close()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- the Prefect API, from the operator's machine ------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment_id(self, flow: str, name: str) -> str:
        return str(self.api("GET", f"/deployments/name/{flow}/{name}")["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api("GET", f"/flow_runs/{run_id}")
        return run

    def train_runs(self, pipeline_run_id: str) -> list[dict[str, Any]]:
        """The `train` flow runs that a pipeline run's dispatch tasks started, oldest first."""
        body = {
            "flow_runs": {"parent_flow_run_id": {"any_": [pipeline_run_id]}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
        runs: list[dict[str, Any]] = self.api("POST", "/flow_runs/filter", json=body)
        train_id = self.deployment_id("train", "train")
        return [run for run in runs if run["deployment_id"] == train_id]

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        body = {"task_runs": {"flow_run_id": {"any_": [flow_run_id]}}}
        runs: list[dict[str, Any]] = self.api("POST", "/task_runs/filter", json=body)
        return runs

    def heartbeats(self, run_id: str) -> int:
        """How many heartbeat events of a flow run the server has received."""
        body = {
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "any_resource": {"id": [f"prefect.flow-run.{run_id}"]},
            }
        }
        return int(self.api("POST", "/events/filter", json=body)["total"])

    def logs(self, run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
        return [entry["message"] for entry in self.api("POST", "/logs/filter", json=body)]

    def describe(self, run_id: str) -> str:
        """A run's logs and the stack's log tails, for assertion messages."""
        names = ["prefect-server", *(f"{p}-{h}" for h in WORKER_HOSTS for p in POOLS)]
        tails = "\n".join(f"--- {name} ---\n{self.log_tail(name, 2000)}" for name in names)
        with contextlib.suppress(httpx.HTTPError):
            return "\n".join(self.logs(run_id)[-40:]) + "\n" + tails
        return tails

    def start_pipeline(self, parameters: dict[str, Any]) -> str:
        pipeline_id = self.deployment_id("pipeline", "pipeline")
        body = {"parameters": parameters}
        run = self.api("POST", f"/deployments/{pipeline_id}/create_flow_run", json=body)
        return str(run["id"])

    def retry(self, run_id: str) -> None:
        """What the UI's Retry does to a crashed flow run: back to Scheduled, for any worker
        of its pool to take."""
        state = {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the test"}
        self.api("POST", f"/flow_runs/{run_id}/set_state", json={"state": state, "force": True})

    def wait_final(self, run_id: str, timeout_s: float) -> str:
        """The run's final state type (or its state when the wait ran out)."""
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

        def state() -> str:
            with contextlib.suppress(httpx.HTTPError):
                return str(self.flow_run(run_id)["state"]["type"])
            return "UNREACHABLE"  # e.g. while the server restarts

        poll(lambda: state() in final, timeout_s, every_s=2)
        return state()


def pipeline_parameters(
    llm_url: str, data_uri: str, output_uri: str, **update: Any
) -> dict[str, Any]:
    """The tiny experiment (tests/slow/conftest.py) on the store: data and output as s3://;
    `llm={...}`, `generation={...}` and `runtime={...}` update those sections of its config."""
    parameters = tiny_pipeline(llm_url, Path("unused"), Path("unused"))
    for section in ("llm", "generation", "runtime"):
        parameters["config"][section].update(update.pop(section, {}))
    assert not update, f"unknown sections {sorted(update)}"
    return {**parameters, "data_dir": data_uri, "output_dir": output_uri}


@contextlib.contextmanager
def hosts_stack(root: Path, sample_dir: Path) -> Iterator[HostsStack]:
    """Everything above, started; stopped and removed on exit, also after a failure."""
    with network(["server", *WORKER_HOSTS]) as net:
        wheel = build_wheel(root / "build")
        installed = installed_env(root / "venv", wheel)
        server = net.hosts["server"]
        with running_postgres(server.address, server.command) as postgres:
            stack = HostsStack(net, root / "hosts", installed, postgres, free_ports(4))
            stack.root.mkdir()
            try:
                _start(stack, sample_dir)
                yield stack
            finally:
                stack.stop()


def _start(stack: HostsStack, sample_dir: Path) -> None:
    server = stack.server
    s3 = [str(BIN / "moto_server"), "-H", server.address, "-p", str(stack.ports + 1)]
    stack.spawn("server", "s3", s3, stack.server_env())
    llm = [sys.executable, "-m", "tests.fakes.openai_server", "--host", server.address]
    llm += ["--port", str(stack.ports + 2), "--latency", str(LLM_LATENCY_S)]
    llm += ["--request-log", str(stack.request_log)]
    stack.spawn("server", "llm", llm, stack.server_env())
    stack.start_prefect_server()

    def store_up() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(stack.s3_endpoint, timeout=3).status_code < 500
        return False

    assert poll(store_up, timeout_s=120, every_s=0.5), stack.log_tail("s3")
    llmsynth = str(BIN / "llmsynth")
    stack.run_on_server("pools", [llmsynth, "pools", "create"])
    stack.run_on_server("deploy", [llmsynth, "deploy", "--crash-after", str(CRASH_AFTER_S)])
    # The data travel only through the store: push a copy, then delete it.
    copy = Path(shutil.copytree(sample_dir, stack.root / "data-to-push"))
    stack.run_on_server("push", [llmsynth, "data", "push", str(copy), stack.data_uri])
    shutil.rmtree(copy)
    for host in WORKER_HOSTS:
        for pool in POOLS:
            stack.start_worker(host, pool)
    names = {f"{pool}-{host}" for host in WORKER_HOSTS for pool in POOLS}

    def online() -> bool:
        workers = [
            worker
            for pool in ("cpu-pool", "gpu-pool")
            for worker in stack.api("POST", f"/work_pools/{pool}/workers/filter", json={})
            if worker["status"] == "ONLINE"
        ]
        return {worker["name"] for worker in workers} >= names

    assert poll(online, timeout_s=300, every_s=1), stack.describe("")
