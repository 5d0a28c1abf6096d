"""A study-shaped run (two tasks, both modes, seeds, a real curve and a mixture) killed with
SIGKILL, once while generating and once while training, then rerun to the end: no answered
request is sent again and no finished model is trained again.

The run is `llmsynth run` in a child process, as a user runs it, against a loopback fake LLM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHAT = "/v1/chat/completions"
TASKS = ["financial_phrasebank", "tweet_irony"]
PER_LABEL = 6
SEEDS = [1, 2]
CURVE = [1, 2]
# Models: per task, real + 2 modes + the curve + one mixture, per seed.
MODELS = len(TASKS) * (3 + len(CURVE) + 1) * len(SEEDS)


def _config(base_url: str, encoder: str) -> dict[str, object]:
    return {
        "name": "study-shaped",
        "tasks": TASKS,
        "llm": {"endpoint": base_url, "model": "fake-model", "max_tokens": 40},
        "generation": {"modes": ["zero_shot", "few_shot"], "per_label": PER_LABEL, "few_shot_k": 2},
        "training": {
            "models": [encoder],
            "seeds": SEEDS,
            "epochs": 2,
            "batch_size": 4,
            "max_length": 32,
            "real_curve": CURVE,
            "mixtures": [{"mode": "few_shot", "real_per_label": 1}],
            "save_models": False,
        },
        "evaluation": {"max_test_examples": 40},
        "analysis": {"min_instances_per_threshold": 2},
        # One request in flight: each reply is stored before the next request is sent.
        "runtime": {"concurrency": 1, "parallel_chunks": 1},
    }


def _cached(output: Path) -> set[str]:
    """Request hashes whose replies the run's cache holds."""
    path = output / "artifacts" / "request-cache.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT hash FROM replies")}
    except sqlite3.OperationalError:
        return set()  # the table is not created yet
    finally:
        db.close()


def _finished_models(output: Path) -> dict[str, float]:
    """Metrics artifacts with their manifest (written last), by key, with the data's mtime."""
    return {
        manifest.parent.name: (manifest.parent / "data.parquet").stat().st_mtime
        for manifest in (output / "artifacts" / "metrics").glob("*/manifest.json")
    }


def _run(config: Path, data: Path, output: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(output.parent / "prefect"),
        "PYTHONPATH": str(REPO),
        "COLUMNS": "80",
    }
    env.pop("PREFECT_API_URL", None)
    argv = [sys.executable, "-m", "flows.cli", "run", "--config", str(config)]
    argv += ["--data-dir", str(data), "--output-dir"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, str(output)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _kill_when(
    worker: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, what: str
) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the run ended ({worker.returncode}) before {what}:\n{log.read_text()}")
        if ready():
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=60)
            return
        time.sleep(0.05)
    worker.kill()
    pytest.fail(f"never reached {what}:\n{log.read_text()[-3000:]}")


def _trained(log: Path) -> set[str]:
    """The models a run trained, by the name its per-epoch log lines give them."""
    return set(re.findall(r"(\S+/\S+/seed \d+) epoch 1/\d+:", log.read_text()))


def _bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path == CHAT]


def test_a_killed_study_reruns_no_answered_request_and_no_finished_model(
    tmp_path: Path, sample_dir: Path, tiny_encoder_dir: str
) -> None:
    output = tmp_path / "out"
    logs = [tmp_path / f"run{i}.log" for i in (1, 2, 3)]
    with FakeOpenAIServer(models=["fake-model"], latency_s=0.02) as server:
        config = tmp_path / "study.yaml"
        config.write_text(yaml.safe_dump(_config(server.base_url, tiny_encoder_dir)))

        # 1. Killed while generating: some replies are stored, no generation is complete.
        log = logs[0]
        _kill_when(
            _run(config, sample_dir, output, log),
            lambda: len(_cached(output)) >= 8,
            log,
            "8 replies",
        )
        answered = _cached(output)
        sent_before = _bodies(server)
        # The last request may have been in flight, answered or not, when the kill landed.
        assert len(sent_before) in (len(answered), len(answered) + 1)
        server.clear()

        # 2. Killed while training: some models are finished, not all of them.
        log = logs[1]
        _kill_when(
            _run(config, sample_dir, output, log),
            lambda: len(_finished_models(output)) >= 3,
            log,
            "3 trained models",
        )
        resent = set(_bodies(server)) & set(sent_before[: len(answered)])
        assert not resent, "a request answered before the first kill was sent again"
        trained = _finished_models(output)
        assert 3 <= len(trained) < MODELS, "the second kill must land mid-training"
        generated = _cached(output)
        server.clear()

        # 3. The rerun finishes: no request at all (every reply is stored), only the rest of
        # the models, and the finished ones untouched.
        log = logs[2]
        finisher = _run(config, sample_dir, output, log)
        assert finisher.wait(timeout=600) == 0, log.read_text()[-4000:]
        assert _bodies(server) == [], "generation had finished; the rerun must send nothing"

    assert _cached(output) == generated
    models = _finished_models(output)
    assert len(models) == MODELS
    assert {key: models[key] for key in trained} == trained, "a finished model was rewritten"
    # The rerun trained exactly the models that had not finished (the one cut short included).
    assert len(_trained(logs[1])) >= len(trained)
    assert len(_trained(logs[2])) == MODELS - len(trained), "a finished model was retrained"
    runs = sorted((output / "runs").iterdir())
    assert (runs[-1] / "report.md").exists()
