"""A batch generation killed with SIGKILL at any point resumes without a duplicate batch and
without submitting an answered request again.

A worker process generates one label chunk through the fake Batch API; the server holds one
call of the second batch (its upload, its creation, a poll, or its results' download) after
acting on it, the worker is killed while it waits for the answer, and the chunk is run again
in this process. Killed at "create", the batch exists but the worker never recorded its id:
only the endpoint's batch list can tell the resumed run about it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.batch_api import BatchPlan, FakeBatchAPI, PausePoint
from tests.fakes.openai_server import FakeOpenAIServer
from tests.tasks.batch_support import (
    CHAT,
    comparable,
    config,
    run_chunk,
    snapshot,
    varied_responder,
)

REPO = Path(__file__).resolve().parents[2]
PER_LABEL = 60
LABEL = "irony"
# Batch 1 takes 3 polls; the 5th poll is batch 2's second.
KILL_AT: dict[PausePoint, int] = {"upload": 2, "create": 2, "retrieve": 5, "content": 2}


def _server(api: FakeBatchAPI) -> FakeOpenAIServer:
    return FakeOpenAIServer(varied_responder, models=["fake-model"], batch_api=api)


def _api() -> FakeBatchAPI:
    return FakeBatchAPI(default=BatchPlan(polls=3))


@pytest.fixture(scope="module")
def uninterrupted(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The batches (their custom_ids) and rows of the same chunk run without a kill."""
    api = _api()
    with _server(api) as server:
        cfg = config(server.base_url, "few_shot", PER_LABEL, min_requests=1)
        frame = run_chunk(cfg, sample_dir, tmp_path_factory.mktemp("reference"), LABEL)
    batches = [b["custom_ids"] for b in api.batches()]
    assert len(batches) >= 3, "the chunk needs follow-up batches for the kill to land in one"
    return batches, comparable(frame)


def _kill_worker_at(
    api: FakeBatchAPI, args: dict[str, Any], tmp_path: Path, point: PausePoint
) -> None:
    args_path, log = tmp_path / "args.json", tmp_path / "worker.log"
    args_path.write_text(json.dumps(args), encoding="utf-8")
    api.pause(point, KILL_AT[point])
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.tasks.generate_chunk", str(args_path)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not api.paused.wait(timeout=300):
            pytest.fail(f"the worker never reached {point}:\n{log.read_text()}")
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=60) == -signal.SIGKILL
    finally:
        api.resume()
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize("point", list(KILL_AT))
def test_killed_batch_run_resumes_without_duplicates(
    point: PausePoint,
    uninterrupted: tuple[list[list[str]], list[dict[str, Any]]],
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    reference_batches, reference_rows = uninterrupted
    store_root = tmp_path / "store"
    api = _api()
    with _server(api) as server:
        cfg = config(server.base_url, "few_shot", PER_LABEL, min_requests=1)
        args = {
            "config": cfg.model_dump(mode="json"),
            "mode": "few_shot",
            "label": LABEL,
            "snapshot": snapshot(cfg, sample_dir, store_root).model_dump(mode="json"),
            "store_root": str(store_root),
            "base_url": server.base_url,
        }
        _kill_worker_at(api, args, tmp_path, point)
        assert len(api.batches()) == (1 if point == "upload" else 2), "killed at batch 2"
        assert not list(store_root.glob("generations/*/manifest.json"))

        frame = run_chunk(cfg, sample_dir, store_root, LABEL)
        assert server.count(CHAT) == 0

    batches = api.batches()
    # The same batches as a run never killed: none created twice, none lost.
    assert [b["custom_ids"] for b in batches] == reference_batches
    intents = [b["metadata"]["llmsynth_intent"] for b in batches]
    assert len(set(intents)) == len(intents)
    assert api.resubmitted_answered() == set()
    assert set(api.submitted().values()) == {1}
    assert comparable(frame) == reference_rows
    assert int(frame["accepted"].sum()) == PER_LABEL
    # The only waste a kill may cause: batch 2's input file uploaded again after an upload
    # whose answer never arrived.
    assert api.uploads() == len(batches) + (1 if point == "upload" else 0)
