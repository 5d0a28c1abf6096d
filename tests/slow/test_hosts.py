"""llmsynth on hosts that share nothing but the network (tests/slow/hosts_stack.py): the pipeline
through the deployments with data and artifacts on the S3 store, a GPU worker killed during
training, the Prefect server restarted during generation, and the pipeline's own host killed
during generation and the run resumed on the other host from the shared request cache.

The tests share one stack and run in file order; each leaves it as it found it (every worker
running). Every worker shares one request cache (the state database on the server host), so a
test that needs its requests actually sent uses its own `llm.seed`. They need root (network
namespaces) and Debian's iproute2 and postgresql: without them they skip with one line, and
under LLMSYNTH_REQUIRE_STACK=1 they fail instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

from tasks.request_cache import RequestCache
from tests.slow.hosts_stack import (
    BUCKET,
    CRASH_AFTER_S,
    HEARTBEAT_S,
    WORKER_HOSTS,
    HostsStack,
    hosts_stack,
    pipeline_parameters,
)
from tests.slow.stack import REPO, poll

pytestmark = pytest.mark.slow

# One task, zero-shot only, one encoder: the real and the zero_shot model.
MODELS = 2
# Every kind of artifact the tiny pipeline writes to the store (annotations need the panel).
ARTIFACT_KINDS = {
    "snapshots",
    "generations",
    "metrics",
    "predictions",
    "curves",
    "diversity",
}
RUN_FILES = {"results.md", "report.md", "report.html", "summary.json", "results.parquet"}
CHAT = "/v1/chat/completions"
# Replies the killed pipeline had cached before the kill.
KILL_AT = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[HostsStack]:
    started = time.monotonic()
    with hosts_stack(tmp_path_factory.mktemp("hosts"), sample_dir) as running:
        print(f"hosts stack started in {time.monotonic() - started:.0f} s")
        yield running


def _s3(stack: HostsStack) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        key="llmsynth-test",
        secret="llmsynth-test-secret",
        endpoint_url=stack.s3_endpoint,
        skip_instance_cache=True,
    )


def _parameters(stack: HostsStack, name: str, **update: Any) -> dict[str, Any]:
    return pipeline_parameters(stack.llm_url, stack.data_uri, stack.output_uri(name), **update)


def _paced(stack: HostsStack, name: str, seed: int, per_minute: int) -> dict[str, Any]:
    """Parameters whose generation lasts a while at any machine speed (8 rows a label at
    `per_minute` requests a minute) and sends requests of its own: with an `llm.seed` no
    other test uses, none is answered from the shared cache."""
    return _parameters(
        stack,
        name,
        llm={"seed": seed},
        generation={"per_label": 8},
        runtime={"requests_per_minute": per_minute},
    )


def _worker(run: dict[str, Any]) -> str:
    """The name of the worker that ran a flow run (`<pool>-<host>`, see hosts_stack)."""
    return str(run["labels"].get("prefect.worker.name", ""))


def _run_dir(stack: HostsStack, name: str) -> str:
    """The one run directory the pipeline published under an output prefix, as bucket/path."""
    (run_dir,) = _s3(stack).ls(f"{BUCKET}/{name}/runs")
    return str(run_dir)


def _metrics_rows(stack: HostsStack, run_dir: str) -> pd.DataFrame:
    fs = _s3(stack)
    return pd.read_parquet(io.BytesIO(fs.cat_file(f"{run_dir}/runs.parquet")))


def _logged_requests(stack: HostsStack) -> list[dict[str, Any]]:
    """Every request the fake LLM has logged so far (path and body), in arrival order."""
    if not stack.request_log.exists():
        return []
    return [json.loads(line) for line in stack.request_log.read_text("utf-8").splitlines()]


def _chat_bodies(requests: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r["body"], sort_keys=True) for r in requests if r["path"] == CHAT]


def _kill_worker(stack: HostsStack, worker: str, flow_process: int) -> None:
    """SIGKILL a worker and the flow-run process it started, and wait until both are gone."""
    stack.stop_process(worker, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(flow_process, signal.SIGKILL)  # if it left the worker's process group
    assert poll(lambda: not psutil.pid_exists(flow_process), timeout_s=10)


def test_worker_hosts_run_the_installed_wheel_not_the_checkout(stack: HostsStack) -> None:
    site_packages = str(stack.installed.site_packages)
    for module in ("llmsynth_core", "tasks", "flows.pipeline"):
        assert stack.installed.where_is(module).startswith(site_packages), module
    path = stack.installed.sys_path()
    assert not any(entry and Path(entry).resolve() == REPO for entry in path), path
    # The workers run in their own empty directories, with no data directory anywhere.
    for host in WORKER_HOSTS:
        env = stack.worker_env(host)
        assert "PYTHONPATH" not in env and env["LLMSYNTH_DATA_DIR"].startswith("s3://")
    assert not (stack.root / "data-to-push").exists(), "the pushed copy is deleted"


def test_pipeline_through_the_deployments_with_everything_on_the_store(
    stack: HostsStack,
) -> None:
    started = time.monotonic()
    run_id = stack.start_pipeline(_parameters(stack, "pipeline"))
    state = stack.wait_final(run_id, timeout_s=600)
    assert state == "COMPLETED", stack.describe(run_id)
    assert _worker(stack.flow_run(run_id)).startswith("cpu-"), "the pipeline ran on cpu-pool"

    trains = stack.train_runs(run_id)
    assert len(trains) == MODELS, [run["name"] for run in trains]
    for train in trains:
        assert train["state"]["type"] == "COMPLETED", stack.describe(train["id"])
        assert train["work_pool_name"] == "gpu-pool" and train["work_queue_name"] == "training"
        assert _worker(train) in {f"gpu-{host}" for host in WORKER_HOSTS}, train["labels"]

    fs = _s3(stack)
    kinds = {path.rsplit("/", 1)[-1] for path in fs.ls(f"{BUCKET}/pipeline/artifacts")}
    assert kinds >= ARTIFACT_KINDS, kinds
    run_dir = _run_dir(stack, "pipeline")
    assert {path.rsplit("/", 1)[-1] for path in fs.ls(run_dir)} >= RUN_FILES
    summary = json.loads(fs.cat_file(f"{run_dir}/summary.json"))
    refs = [ref for kind in ("metrics", "diversity", "annotations") for ref in summary[kind]]
    assert len(summary["metrics"]) == MODELS
    for ref in refs:
        assert ref["uri"].startswith(f"s3://{BUCKET}/pipeline/artifacts/"), ref["uri"]
        assert fs.exists(ref["uri"]), ref["uri"]
    results = fs.cat_file(f"{run_dir}/results.md").decode()
    assert "## Results on the real test split\n\nMacro-F1" in results
    print(f"pipeline on the hosts: {time.monotonic() - started:.0f} s")


def test_a_killed_gpu_worker_is_detected_and_its_training_rerun_elsewhere(
    stack: HostsStack,
) -> None:
    started = time.monotonic()
    run_id = stack.start_pipeline(_parameters(stack, "gpu-kill"))

    def running_train() -> dict[str, Any] | None:
        running = [r for r in stack.train_runs(run_id) if r["state"]["type"] == "RUNNING"]
        return running[0] if running and running[0]["infrastructure_pid"] else None

    def beating_train() -> dict[str, Any] | None:
        # The crash automation's window opens at a run's first heartbeat (sent as it starts):
        # a run killed before that heartbeat reaches the server is never marked Crashed.
        train = running_train()
        return train if train is not None and stack.heartbeats(train["id"]) else None

    assert poll(lambda: beating_train() is not None, timeout_s=400), stack.describe(run_id)
    victim = beating_train()
    assert victim is not None
    worker = _worker(victim)
    host = worker.removeprefix("gpu-")
    assert host in WORKER_HOSTS, victim["labels"]
    _kill_worker(stack, worker, int(victim["infrastructure_pid"]))
    killed_at = time.monotonic()
    try:
        state = stack.wait_final(run_id, timeout_s=600)
        assert state == "COMPLETED", stack.describe(run_id)
        crashed = stack.flow_run(victim["id"])
        assert crashed["state"]["type"] == "CRASHED", crashed["state"]
        assert "no heartbeat" in (crashed["state"]["message"] or "")
        trains = stack.train_runs(run_id)
        reruns = [r for r in trains if r["name"] == victim["name"] and r["id"] != victim["id"]]
        assert len(reruns) == 1, [(r["name"], r["state"]["type"]) for r in trains]
        (rerun,) = reruns
        assert rerun["state"]["type"] == "COMPLETED"
        other = next(h for h in WORKER_HOSTS if h != host)
        assert _worker(rerun) == f"gpu-{other}", "the rerun ran on the other host's gpu worker"

        rows = _metrics_rows(stack, _run_dir(stack, "gpu-kill"))
        assert len(rows) == MODELS, rows[["task", "source", "model", "seed"]]
        assert not rows.duplicated(["task", "model", "source", "seed", "replicate"]).any()
        print(
            f"gpu kill: {time.monotonic() - started:.0f} s in all, "
            f"{time.monotonic() - killed_at:.0f} s from the kill (crash window {CRASH_AFTER_S} s)"
        )
    finally:
        stack.start_worker(host, "gpu")


def test_the_run_completes_across_a_prefect_server_restart_during_generation(
    stack: HostsStack,
) -> None:
    started = time.monotonic()
    # Paced by the rate limiter, generation lasts about 20 s whatever the machine's speed.
    parameters = _paced(stack, "restart", seed=2, per_minute=90)
    run_id = stack.start_pipeline(parameters)

    def generating() -> bool:
        return any(
            run["name"].startswith("generate ") and run["state"]["type"] == "RUNNING"
            for run in stack.task_runs(run_id)
        )

    assert poll(generating, timeout_s=400, every_s=0.5), stack.describe(run_id)
    down = datetime.now().astimezone()
    stack.stop_process("prefect-server")
    time.sleep(3)  # down for a moment: the flow run's calls and events must ride it out
    stack.start_prefect_server()
    state = stack.wait_final(run_id, timeout_s=600)
    assert state == "COMPLETED", stack.describe(run_id)
    ended = [
        datetime.fromisoformat(run["end_time"])
        for run in stack.task_runs(run_id)
        if run["name"].startswith("generate ") and run["end_time"]
    ]
    assert any(end > down for end in ended), "generation went on while the server was down"
    assert len(_metrics_rows(stack, _run_dir(stack, "restart"))) == MODELS
    print(f"server restart: {time.monotonic() - started:.0f} s")


def test_a_pipeline_killed_during_generation_resumes_on_the_other_host_from_the_shared_cache(
    stack: HostsStack,
) -> None:
    started = time.monotonic()
    parameters = _paced(stack, "gen-kill", seed=3, per_minute=60)
    runtime = parameters["config"]["runtime"]
    most_in_flight = runtime["concurrency"] * runtime["parallel_chunks"]
    cache = RequestCache(stack.state_db)  # the database every worker host was given
    first_cached, first_logged = len(cache), len(_logged_requests(stack))
    run_id = stack.start_pipeline(parameters)
    assert poll(lambda: len(cache) - first_cached >= KILL_AT, timeout_s=400, every_s=0.2), (
        stack.describe(run_id)
    )
    victim = stack.flow_run(run_id)
    worker = _worker(victim)
    host = worker.removeprefix("cpu-")
    assert host in WORKER_HOSTS and victim["infrastructure_pid"], victim["labels"]
    _kill_worker(stack, worker, int(victim["infrastructure_pid"]))
    time.sleep(1)  # a request already on the wire still reaches the fake's log
    killed_at = time.monotonic()
    before = _chat_bodies(_logged_requests(stack)[first_logged:])
    cached = len(cache) - first_cached
    in_flight = len(before) - cached
    assert 0 <= in_flight <= most_in_flight, (len(before), cached)
    try:
        # As a user would: wait until the run shows Crashed, then press Retry in the UI.
        crash_wait = CRASH_AFTER_S + 2 * HEARTBEAT_S + 60
        crashed = poll(
            lambda: stack.flow_run(run_id)["state"]["type"] == "CRASHED", crash_wait, every_s=2
        )
        assert crashed, stack.flow_run(run_id)["state"]
        stack.retry(run_id)
        state = stack.wait_final(run_id, timeout_s=600)
        assert state == "COMPLETED", stack.describe(run_id)
        other = next(h for h in WORKER_HOSTS if h != host)
        assert _worker(stack.flow_run(run_id)) == f"cpu-{other}", "rerun on the other host"
        after = _chat_bodies(_logged_requests(stack)[first_logged:])[len(before) :]
        # Sent again: only requests that were in flight at the kill, never a cached reply's.
        again = set(before) & set(after)
        assert len(again) <= in_flight, f"{len(again)} sent again, {in_flight} were in flight"
        assert after, "the rerun generated the rest"
        assert len(_metrics_rows(stack, _run_dir(stack, "gen-kill"))) == MODELS
        print(
            f"generation kill: {time.monotonic() - started:.0f} s in all, "
            f"{time.monotonic() - killed_at:.0f} s from the kill; {cached} replies cached and "
            f"{in_flight} in flight at the kill, {len(after)} sent by the rerun, "
            f"{len(again)} of them sent before"
        )
    finally:
        stack.start_worker(host, "cpu")
