"""watch-models against the loopback fake server: first sight records, a change emits once;
and after a model change the pipeline redoes only what depends on the model."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL
from prefect.variables import Variable

from flows.analyze import analyze
from flows.pipeline import pipeline
from flows.watch_models import watch_models
from llmsynth_core.errors import LlmsynthError
from tasks.artifacts import read_text
from tasks.watch import EVENT, detect_change, endpoint_resource, list_models, variable_name
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"


def test_detect_change_names_the_new_model() -> None:
    assert detect_change(None, "a", ["a"]) is None
    assert detect_change("a", "a", ["a"]) is None
    change = detect_change("a", "a,b", ["a", "b"])
    assert change is not None and change.model == "b"
    swapped = detect_change("a", "c", ["c"])
    assert swapped is not None and swapped.model == "c"
    fingerprint = detect_change("sha-1", "sha-2", [])
    assert fingerprint is not None and fingerprint.model == "sha-2"


def test_names_for_an_endpoint() -> None:
    assert endpoint_resource("http://127.0.0.1:8000/v1") == "llmsynth.endpoint.127.0.0.1:8000"
    assert variable_name("http://vllm:8000/v1") == "llmsynth_models_vllm_8000"


@pytest.mark.usefixtures("prefect_harness")
def test_first_sight_records_then_a_change_emits_exactly_once() -> None:
    with FakeOpenAIServer(models=["model-a"]) as server:
        assert watch_models(server.base_url) is None, "first sight must only record"
        assert Variable.get(variable_name(server.base_url)) == "model-a"
        assert watch_models(server.base_url) is None
        server.models = ["model-a", "model-b"]
        change = watch_models(server.base_url)
        assert change is not None
        assert change["model"] == "model-b"
        assert change["previous"] == "model-a"
        assert watch_models(server.base_url) is None, "an unchanged list emits nothing"
        assert server.count("/v1/models") == 4
        # A fingerprint replaces the list: weights replaced under the same model id.
        assert watch_models(server.base_url, fingerprint="sha-1") is not None
        assert watch_models(server.base_url, fingerprint="sha-1") is None
        assert server.count("/v1/models") == 4
        # On the server: exactly one event per change, with the model in its payload.
        events = _events(endpoint_resource(server.base_url), expect=2)
        assert [event["payload"]["model"] for event in events] == ["model-b", "sha-1"]
        assert {event["event"] for event in events} == {EVENT}


def _events(resource_id: str, expect: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """The server's events for a resource, oldest first, once `expect` arrived (or timeout)."""
    EventsWorker.drain_all()
    body = {"filter": {"event": {"name": [EVENT]}, "resource": {"id": [resource_id]}}}
    url = f"{PREFECT_API_URL.value()}/events/filter"
    deadline = time.monotonic() + timeout_s
    while True:
        events: list[dict[str, Any]] = httpx.post(url, json=body, timeout=10).json()["events"]
        if len(events) >= expect or time.monotonic() > deadline:
            time.sleep(1.0)  # and nothing more arrives after it
            events = httpx.post(url, json=body, timeout=10).json()["events"]
            return sorted(events, key=lambda event: event["occurred"])
        time.sleep(0.5)


@pytest.mark.usefixtures("prefect_harness")
def test_after_a_model_change_only_model_dependent_work_reruns(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an object store (memory://, as S3 would be); then the analyze flow re-analyses."""
    monkeypatch.setenv("LLMSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    output = f"memory://llmsynth-{uuid.uuid4().hex[:8]}/output"
    with FakeOpenAIServer(models=["model-a", "model-b"]) as server:
        config = small_config(server.base_url, tasks=("ag_news",), per_label=2, max_steps=1)
        generation = config.generation.model_copy(update={"modes": ["zero_shot"]})
        config = config.model_copy(update={"generation": generation})
        first = pipeline(config, str(sample_dir), output, model="model-a")
        calls_a = server.count(CHAT)
        assert calls_a > 0
        assert {r.body["model"] for r in server.requests if r.path == CHAT} == {"model-a"}

        second = pipeline(config, str(sample_dir), output, model="model-b")
        sent_b = [r for r in server.requests[calls_a:] if r.path == CHAT]
        assert len(sent_b) >= calls_a, "generation must be redone with the new model"
        assert {r.body["model"] for r in sent_b} == {"model-b"}

    def manifest(uri: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(read_text(f"{uri.rsplit('/', 1)[0]}/manifest.json"))
        return loaded

    def by_source(run: str) -> dict[str, str]:
        assert run.startswith(output + "/runs/"), run
        summary = json.loads(read_text(f"{run}/summary.json"))
        return {manifest(ref["uri"])["source"]: ref["uri"] for ref in summary["metrics"]}

    def trained_by(uri: str) -> str:
        return str(manifest(uri)["provenance"]["flow_run_id"])

    a, b = by_source(first), by_source(second)
    assert all(uri.startswith(output + "/artifacts/metrics/") for uri in a.values())
    assert a["real"] == b["real"], "the real-data model does not depend on the generator"
    assert trained_by(b["real"]) == trained_by(a["zero_shot"]), "trained by the first run"
    assert a["zero_shot"] != b["zero_shot"]
    assert trained_by(b["zero_shot"]) != trained_by(b["real"]), "retrained by the second run"
    assert "model-b" in read_text(f"{second}/results.md")

    # The analyze deployment's flow: a fresh analysis of the stored run, written back there.
    fs = fsspec.filesystem("memory")
    fs.rm(f"{second}/results.md".removeprefix("memory://"))
    assert analyze(second) == second
    assert "## Results on the real test split\n\nMacro-F1" in read_text(f"{second}/results.md")
    fs.rm(output.removeprefix("memory://").split("/")[0], recursive=True)


def test_an_endpoint_that_is_not_a_url_is_named() -> None:
    with pytest.raises(LlmsynthError, match="LLMSYNTH_LLM_ENDPOINT"):
        list_models("", "OPENAI_API_KEY")
