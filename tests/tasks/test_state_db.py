"""The state database on SQLite: the request cache, and a budget ledger that holds one cap
across processes (the same tests on PostgreSQL are in tests/slow/test_state_db_postgres.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect import flow
from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from llmsynth_core.config import ExperimentConfig, parse_experiment
from llmsynth_core.errors import BudgetExceeded, ConfigError
from llmsynth_core.llm_types import LLMResponse
from tasks.budget import BudgetLedger
from tasks.llm_client import LLMClient
from tasks.ratelimit import RateLimiter
from tasks.request_cache import RequestCache
from tasks.requester import Requester
from tasks.state_db import (
    STATE_DB_ENV,
    driver_cursor,
    sqlite_url,
    state_db_url,
    state_engine,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.tasks.ledger_child import LLM, request, spend_together

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2-not-for-logs"


def _reply(text: str) -> LLMResponse:
    return LLMResponse(text=text, prompt_tokens=3, completion_tokens=5, model="m")


def test_replies_round_trip_and_survive_a_sigkill_right_after_put(tmp_path: Path) -> None:
    path = tmp_path / "state" / "request-cache.sqlite"
    # A process that stores 25 replies and kills itself the instant the last put returns.
    child = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from llmsynth_core.llm_types import LLMResponse\n"
        "from tasks.request_cache import RequestCache\n"
        "cache = RequestCache(Path(sys.argv[1]))\n"
        "for i in range(25):\n"
        "    r = LLMResponse(text=f'reply {i}', prompt_tokens=3, completion_tokens=5, model='m')\n"
        "    cache.put(f'h{i}', r)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(path)], cwd=REPO, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    cache = RequestCache(path)
    assert len(cache) == 25
    assert cache.get("h24") == _reply("reply 24")
    assert cache.get("missing") is None
    cache.put("h0", _reply("a later reply"))  # the first reply stored under a hash is kept
    assert cache.get("h0") == _reply("reply 0")
    cache.close()


def test_a_failed_write_through_the_driver_leaves_nothing_and_holds_no_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "request-cache.sqlite"
    cache = RequestCache(path)
    engine = state_engine(sqlite_url(path))
    with pytest.raises(RuntimeError, match="mid-write"), driver_cursor(engine, write=True) as db:
        db.cursor.execute(
            f"INSERT INTO replies (hash, reply, at) VALUES ({db.markers(3)})",
            ("h-rolled-back", _reply("never kept").model_dump_json(), 0.0),
        )
        raise RuntimeError("mid-write")
    # Another connection writes at once (no write lock left behind) and sees no half-write.
    other = sqlite3.connect(path, timeout=0.5)
    other_reply = _reply("other").model_dump_json()
    other.execute("INSERT INTO replies VALUES ('h-other', ?, 0)", (other_reply,))
    other.commit()
    other.close()
    found = cache.get_many(["h-rolled-back", "h-other", "h-rolled-back"])
    assert found == [None, _reply("other"), None]
    assert len(cache) == 1
    cache.put_many([("h1", _reply("one")), ("h2", _reply("two")), ("h1", _reply("again"))])
    assert cache.get_many(["h2", "missing", "h1"]) == [_reply("two"), None, _reply("one")]


def test_a_cache_file_of_the_sqlite_only_cache_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "request-cache.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE replies (hash TEXT PRIMARY KEY, reply TEXT, at REAL)")
    old.execute("INSERT INTO replies VALUES (?, ?, 0)", ("h", _reply("old").model_dump_json()))
    old.commit()
    old.close()
    assert RequestCache(path).get("h") == _reply("old")
    # The default location is that same file, next to the artifacts.
    assert state_db_url(None, tmp_path) == sqlite_url(path)


def test_state_db_precedence_env_then_config_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_DB_ENV, raising=False)
    configured = sqlite_url(tmp_path / "configured.sqlite")
    assert state_db_url(configured, tmp_path) == configured
    monkeypatch.setenv(STATE_DB_ENV, "postgresql+psycopg://llmsynth@db:5432/llmsynth")
    assert state_db_url(configured, tmp_path) == "postgresql+psycopg://llmsynth@db:5432/llmsynth"
    base = {"name": "x", "tasks": ["ag_news"]}
    with_db = {**base, "runtime": {"state_db": configured}}
    # Runtime, never hashed: where the cache lives moves no artifact.
    assert (
        ExperimentConfig.model_validate(with_db).semantic_hash()
        == ExperimentConfig.model_validate(base).semantic_hash()
    )


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://llmsynth:{SECRET}@db:5432/llmsynth",
        f"postgresql://llmsynth@db:5432/llmsynth?password={SECRET}",
        f"postgresql+psycopg://llmsynth:{SECRET}@db:not-a-port/llmsynth",
    ],
)
def test_a_url_with_a_password_is_refused_without_repeating_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @flow
    def takes_config(config: ExperimentConfig) -> None:
        """A flow's parameter validation, as a deployment's flow run does it (and logs)."""

    raw = {"name": "x", "tasks": ["ag_news"], "runtime": {"state_db": url}}
    with pytest.raises(ConfigError) as from_file:
        parse_experiment(raw, "experiment.yaml")
    with pytest.raises(ValidationError) as from_model:
        ExperimentConfig.model_validate(raw)
    with pytest.raises(ParameterTypeError) as from_prefect:
        takes_config.validate_parameters({"config": raw})
    monkeypatch.setenv(STATE_DB_ENV, url)
    with pytest.raises(ConfigError) as from_env:
        state_db_url(None, tmp_path)
    for message in (
        str(from_file.value),
        str(from_model.value),
        from_model.value.json(),
        str(from_prefect.value),
        str(from_env.value),
    ):
        assert "PGPASSWORD" in message
        assert SECRET not in message


def test_charges_count_once_per_run_whoever_books_them(tmp_path: Path) -> None:
    engine = state_engine(sqlite_url(tmp_path / "state.sqlite"))
    chunk = BudgetLedger(1.0, engine, "run 1", scope="generations/k")
    chunk.charge("h1", 0.1)
    chunk.charge("h1", 0.1)  # the same reply read back from the cache
    # Another process of the same run (a resumed flow run) reads the same reply back.
    BudgetLedger(1.0, engine, "run 1", scope="generations/k").charge("h1", 0.1)
    assert chunk.spent_usd == pytest.approx(0.1)
    # The chunk's artifact, finished elsewhere and reused: charged what its requests were not.
    chunk.charge_artifact("generations/k", 0.3)
    chunk.charge_artifact("generations/k", 0.3)
    assert chunk.spent_usd == pytest.approx(0.3)
    # Another run pays for its own use.
    other = BudgetLedger(1.0, engine, "run 2")
    other.charge_artifact("generations/k", 0.3)
    assert other.spent_usd == pytest.approx(0.3) and chunk.spent_usd == pytest.approx(0.3)


def test_a_resumed_run_reading_its_replies_back_is_not_charged_again(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "state.sqlite")

    async def send(ledger: BudgetLedger, server: FakeOpenAIServer) -> None:
        client = LLMClient(server.base_url, timeout_s=10)
        try:
            requester = Requester(client, RequestCache(url), ledger, RateLimiter(None, None), LLM)
            for i in range(3):
                await requester(request("resume", i))
        finally:
            await client.aclose()

    with FakeOpenAIServer() as server:
        first = BudgetLedger(0.1, state_engine(url), "flow run 1")
        asyncio.run(send(first, server))
        spent = first.spent_usd
        # The same flow run again (a new process): every reply is cached and already charged.
        again = BudgetLedger(0.1, state_engine(url), "flow run 1")
        asyncio.run(send(again, server))
        assert server.count() == 3
    assert spent > 0 and again.spent_usd == pytest.approx(spent)


def test_two_processes_sharing_a_cap_stop_together_at_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "state.sqlite")
    cap = 0.3  # about 15 of the $0.02 bookings, about 18 replies at their real cost
    with FakeOpenAIServer(latency_s=0.05) as server:
        results = spend_together(url, "flow run shared", cap, server.base_url, tmp_path)
        sent = server.count()
    paid = sum(r["cost_usd"] for r in results)
    assert sum(r["sent"] for r in results) == sent
    assert all(r["refused"] and "max_cost_usd" in r["refused"] for r in results), results
    # The endpoint's bill stays under the one cap: each process alone would have spent it.
    assert paid <= cap
    # And they stopped at it, not before: less than what both could have had in flight.
    assert paid > cap - 2 * 2 * 0.02, (paid, results)
    assert BudgetLedger(cap, state_engine(url), "flow run shared").spent_usd == pytest.approx(paid)


def test_a_killed_process_releases_its_reservation_and_a_live_one_keeps_it(
    tmp_path: Path,
) -> None:
    url, ttl_s = sqlite_url(tmp_path / "state.sqlite"), 3.0
    args = {
        "command": "hold",
        "state_db": url,
        "run_key": "flow run held",
        "cap": 1.0,
        "estimate": 0.9,
        "ttl_s": ttl_s,
        "ready": str(tmp_path / "ready"),
    }
    (tmp_path / "args.json").write_text(json.dumps(args), encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.tasks.ledger_child", str(tmp_path / "args.json")], cwd=REPO
    )
    mine = BudgetLedger(1.0, state_engine(url), "flow run held")
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # Alive, its heartbeat keeps the reservation past its time to live.
        time.sleep(2 * ttl_s)
        with pytest.raises(BudgetExceeded):
            mine.reserve(0.2)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        killed = time.monotonic()
        while True:
            try:
                reservation = mine.reserve(0.2)
                break
            except BudgetExceeded:
                assert time.monotonic() - killed < ttl_s + 10, "the reservation never lapsed"
                time.sleep(0.2)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    mine.settle(reservation, "h", 0.1)
    assert mine.spent_usd == pytest.approx(0.1)
