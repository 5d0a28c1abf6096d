"""`llmsynth generate --batch` end to end on the fake server, and its refusal where the endpoint
has no Batch API. The app is called in-process (see tests/flows/test_cli_generate.py for why)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from flows import cli
from tasks.batch_client import NoBatchAPI
from tests.fakes.batch_api import BatchPlan, FakeBatchAPI
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"
PER_LABEL = 4


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=200))
    cli.app(args, standalone_mode=False)
    return buffer.getvalue()


def _config_file(tmp_path: Path, endpoint: str) -> Path:
    raw = small_config(endpoint, tasks=("tweet_irony",), per_label=PER_LABEL).model_dump(
        mode="json"
    )
    raw["llm"]["output_price_per_mtok"] = 2.0
    raw["generation"]["conversation_length"] = 2
    raw["runtime"].update(batch_min_requests=1, batch_poll_s=0.01, batch_poll_max_s=0.05)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _args(config: Path, sample_dir: Path, tmp_path: Path) -> list[str]:
    return [
        "generate",
        "--batch",
        "--config",
        str(config),
        "--data-dir",
        str(sample_dir),
        "--output-dir",
        str(tmp_path / "out"),
    ]


def _progress_since(started: datetime) -> dict[str, tuple[float, str]]:
    """Latest value and description of each progress artifact created since `started`."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

    only_progress = ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=only_progress)
    return {
        str(a.key): (float(a.data), a.description or "")  # type: ignore[arg-type]
        for a in sorted(artifacts, key=lambda a: a.created or started)
        if a.created is not None and a.created >= started
    }


@pytest.mark.usefixtures("prefect_harness")
def test_generate_with_batch_fills_every_quota_through_batches(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = datetime.now(UTC)
    api = FakeBatchAPI(default=BatchPlan(polls=3))
    with FakeOpenAIServer(batch_api=api) as server:
        config = _config_file(tmp_path, server.base_url)
        output = _cli(_args(config, sample_dir, tmp_path), monkeypatch)
        assert server.count(CHAT) == 0
    assert "through the Batch API" in output
    assert f"{PER_LABEL}/{PER_LABEL}" in output
    batches = api.batches()
    assert batches and {b["status"] for b in batches} == {"completed"}
    # Zero-shot conversations of 2 turns: a label's first round is two batches, one per turn;
    # few-shot requests are independent, one batch. Two labels of each.
    assert len(batches) >= 2 * 2 + 2 * 1
    assert set(api.submitted().values()) == {1}

    run_dir = next((tmp_path / "out" / "runs").iterdir())
    volume = json.loads((run_dir / "generation.json").read_text())
    assert all(row["accepted"] == PER_LABEL for row in volume["labels"])
    progress = _progress_since(started)
    for mode in ("zero-shot", "few-shot"):
        for label in ("irony", "non-irony"):
            assert progress[f"generate-tweet-irony-{mode}-{label}"][0] == 100.0
            value, description = progress[f"batches-tweet-irony-{mode}-{label}"]
            assert value == 100.0
            assert description.startswith("batch completed:") and "waited" in description


@pytest.mark.usefixtures("prefect_harness")
def test_an_endpoint_without_batches_is_refused_before_anything_is_sent(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer() as server:  # like llama.cpp, vLLM and Ollama: no /v1/batches
        args = _args(_config_file(tmp_path, server.base_url), sample_dir, tmp_path)
        with pytest.raises(NoBatchAPI, match="Drop --batch"):
            _cli(args, monkeypatch)
        assert [r.path for r in server.requests] == ["/v1/batches"]
    embedded = _config_file(tmp_path, "embedded")
    with pytest.raises(NoBatchAPI, match=r"'embedded'.*drop --batch"):
        _cli(_args(embedded, sample_dir, tmp_path), monkeypatch)
