"""The state database on PostgreSQL, shared by processes that share nothing else.

`llmsynth generate` is killed with SIGKILL mid-generation, then run again from another working
directory with another output directory and Prefect home: the one thing the two runs share is
the PostgreSQL URL, and no reply the first run had cached is requested again. Two processes
booking on one cap stop together at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tasks.budget import BudgetLedger
from tasks.request_cache import RequestCache
from tasks.state_db import STATE_DB_ENV, state_engine
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config
from tests.slow.postgres import running_postgres
from tests.tasks.ledger_child import spend_together

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHAT = "/v1/chat/completions"
CONCURRENCY, CHUNKS = 2, 2
KILL_AT = 12  # cached replies before the kill
# Generous: a busy machine can take minutes to start Prefect's local server; an idle one
# does the whole test in well under a minute.
WAIT_S = 420


@pytest.fixture(scope="module")
def state_db() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database (loopback, trust auth: no password anywhere)."""
    with running_postgres() as postgres:
        yield postgres.url.replace("+asyncpg", "+psycopg")


def _generate(
    where: Path, config: Path, data: Path, state: tuple[str, str]
) -> subprocess.Popen[bytes]:
    """`llmsynth generate` as a user on another machine would run it: its own working
    directory, output directory and Prefect home; the state database as the flag or the
    variable names it (`state`)."""
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(where / "prefect"), "PYTHONPATH": str(REPO), "COLUMNS": "80"}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(WAIT_S)
    env.pop(STATE_DB_ENV, None)
    argv = [sys.executable, "-m", "flows.cli", "generate", "--config", str(config)]
    argv += ["--data-dir", str(data), "--output-dir", str(where / "out")]
    how, url = state
    if how == "flag":
        argv += ["--state-db", url]
    else:
        env[STATE_DB_ENV] = url
    with (where / "run.log").open("wb") as out:
        return subprocess.Popen(
            argv, cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path == CHAT]


@pytest.mark.timeout(2 * WAIT_S + 120)
def test_a_killed_generation_resumes_elsewhere_from_the_shared_cache(
    state_db: str, sample_dir: Path, tmp_path: Path
) -> None:
    with FakeOpenAIServer(models=["fake-model"], latency_s=0.1) as server:
        config = small_config(server.base_url, tasks=("ag_news",), per_label=10)
        generation = config.generation.model_copy(update={"modes": ["zero_shot"]})
        runtime = config.runtime.model_copy(
            update={"concurrency": CONCURRENCY, "parallel_chunks": CHUNKS}
        )
        config = config.model_copy(update={"generation": generation, "runtime": runtime})
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
        cache = RequestCache(state_db)
        start = len(cache)

        first = _generate(tmp_path / "host-a", path, sample_dir, ("flag", state_db))
        log = tmp_path / "host-a" / "run.log"
        try:
            deadline = time.monotonic() + WAIT_S
            while len(cache) - start < KILL_AT:
                assert first.poll() is None, f"ended before the kill:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"never generating:\n{log.read_text()[-3000:]}"
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
        cached, before = len(cache) - start, _bodies(server)
        in_flight = len(before) - cached
        assert 0 <= in_flight <= CONCURRENCY * CHUNKS, (len(before), cached)

        server.clear()
        second = _generate(tmp_path / "host-b", path, sample_dir, ("env", state_db))
        log = tmp_path / "host-b" / "run.log"
        try:
            assert second.wait(timeout=WAIT_S) == 0, log.read_text()[-3000:]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(second.pid, signal.SIGKILL)
        after = _bodies(server)

    # Sent again: only requests that were in flight at the kill, never a cached reply's.
    again = set(before) & set(after)
    assert len(again) <= in_flight, f"{len(again)} sent again, {in_flight} were in flight"
    assert len(cache) - start == cached + len(after)
    assert (tmp_path / "host-b" / "out" / "runs").is_dir()
    assert not (tmp_path / "host-b" / "out" / "artifacts" / "request-cache.sqlite").exists()


def test_two_processes_on_postgres_sharing_a_cap_stop_together_at_it(
    state_db: str, tmp_path: Path
) -> None:
    cap, run_key = 0.3, "flow run shared on postgres"
    with FakeOpenAIServer(latency_s=0.05) as server:
        results = spend_together(state_db, run_key, cap, server.base_url, tmp_path)
        sent = server.count()
    paid = sum(r["cost_usd"] for r in results)
    assert sum(r["sent"] for r in results) == sent
    assert all(r["refused"] and "max_cost_usd" in r["refused"] for r in results), results
    # Under the one cap, and stopped at it: less than both processes' bookings in flight short.
    assert cap - 2 * 2 * 0.02 < paid <= cap, (paid, results)
    ledger = BudgetLedger(cap, state_engine(state_db), run_key)
    assert ledger.spent_usd == pytest.approx(paid)
