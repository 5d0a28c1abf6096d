"""A generation killed with SIGKILL resumes without paying twice for any stored reply.

A worker process generates one label chunk against a real loopback server and is killed once
the request cache holds some replies; the chunk is then run again in this process.
"""

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
from typing import Any

import pytest

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.llm_types import LLMResponse
from llmsynth_core.registry import load_registry
from tasks.artifacts import read_artifact
from tasks.generate import generate_label_task
from tasks.snapshot import snapshot_task
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
CHAT = "/v1/chat/completions"
PER_LABEL = 40
KILL_AT = 10


def _config(base_url: str, mode: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "resume",
            "tasks": ["tweet_irony"],
            "llm": {"endpoint": base_url, "model": "fake-model", "max_tokens": 40},
            "generation": {"modes": [mode], "per_label": PER_LABEL, "few_shot_k": 2},
            # One request in flight: each reply is cached before the next request is sent.
            "runtime": {"concurrency": 1},
        }
    )


def _cached(path: Path) -> dict[str, str]:
    """Request hash -> reply text of every reply the cache holds."""
    if not path.exists():
        return {}
    db = sqlite3.connect(path, timeout=30)
    try:
        rows = db.execute("SELECT hash, reply FROM replies").fetchall()
    except sqlite3.OperationalError:
        return {}  # the worker has not created the table yet
    finally:
        db.close()
    return {key: LLMResponse.model_validate_json(reply).text for key, reply in rows}


def _wait_for_cache(path: Path, rows: int, worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"worker exited ({worker.returncode}) before the kill:\n{log.read_text()}")
        if len(_cached(path)) >= rows:
            return
        time.sleep(0.01)
    pytest.fail(f"the request cache never reached {rows} rows:\n{log.read_text()}")


def _bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path == CHAT]


def _run_worker_until_killed(args: dict[str, Any], tmp_path: Path) -> int:
    args_path, log = tmp_path / "args.json", tmp_path / "worker.log"
    args_path.write_text(json.dumps(args), encoding="utf-8")
    cache = Path(args["store_root"]) / "request-cache.sqlite"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.tasks.generate_chunk", str(args_path)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_cache(cache, KILL_AT, worker, log)
        os.kill(worker.pid, signal.SIGKILL)
        return worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize("mode", ["zero_shot", "few_shot"])
def test_killed_chunk_resumes_without_resending_answered_requests(
    mode: str, sample_dir: Path, tmp_path: Path
) -> None:
    spec = load_registry()["tweet_irony"]
    label = spec.label_names[1]
    store_root = tmp_path / "store"
    with FakeOpenAIServer(models=["fake-model"], latency_s=0.05) as server:
        config = _config(server.base_url, mode)
        snapshot = snapshot_task.fn(spec, config, str(sample_dir), str(store_root))
        args = {
            "config": config.model_dump(mode="json"),
            "mode": mode,
            "label": label,
            "snapshot": snapshot.model_dump(mode="json"),
            "store_root": str(store_root),
            "base_url": server.base_url,
        }
        assert _run_worker_until_killed(args, tmp_path) == -signal.SIGKILL

        cached = _cached(store_root / "request-cache.sqlite")
        stored = len(cached)
        assert KILL_AT <= stored < PER_LABEL, "the kill must land mid-chunk"
        assert not list(store_root.glob("generations/*/manifest.json"))
        before = _bodies(server)
        # The last request may have been in flight, answered or not, when the kill landed.
        assert len(before) in (stored, stored + 1)
        answered = set(before[:stored])

        server.clear()
        ref = asyncio.run(
            generate_label_task.fn(
                spec, config, mode, label, snapshot, str(store_root), server.base_url
            )
        )
        resent = _bodies(server)

    frame = read_artifact(ref)
    assert int(frame["accepted"].sum()) == PER_LABEL
    assert not answered & set(resent), "a stored reply was paid for twice"
    assert len(resent) == len(frame) - stored
    # Every stored reply fills its row: the same text the killed run had paid for.
    resumed = frame[frame["request_hash"].isin(list(cached))].sort_values("request_index")
    assert len(resumed) == stored
    assert resumed["raw_text"].tolist() == resumed["request_hash"].map(cached).tolist()
    if mode == "few_shot":
        # Requests went out in index order (zero-shot chats interleave their conversations).
        assert resumed["request_index"].tolist() == list(range(stored))
