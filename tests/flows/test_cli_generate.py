"""`llmsynth generate` and `llmsynth export` against the loopback fake server.

The app is called in-process and its console swapped for a buffer, not through typer's
CliRunner or capsys: both swap sys.stderr for a buffer they close afterwards, and Prefect's
log handler, set up during the first flow run, would keep writing to the closed buffer.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from flows import cli
from llmsynth_core.errors import BudgetExceeded, LlmsynthError
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=200))
    cli.app(args, standalone_mode=False)
    return buffer.getvalue()


def _config_file(tmp_path: Path, base_url: str, price: float = 0.0) -> Path:
    config = small_config(base_url, tasks=("tweet_irony",), per_label=2)
    raw = config.model_dump(mode="json")
    raw["llm"]["output_price_per_mtok"] = price
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.usefixtures("prefect_harness")
def test_generate_prints_volume_and_export_writes_a_loadable_dataset(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets import load_from_disk

    started = datetime.now(UTC)
    with FakeOpenAIServer() as server:
        config = _config_file(tmp_path, server.base_url)
        args = ["generate", "--config", str(config), "--data-dir", str(sample_dir)]
        args += ["--output-dir", str(tmp_path / "out"), "--export", str(tmp_path / "hf")]
        output = _cli(args, monkeypatch)
    assert "generation volume" in output
    assert "2/2" in output
    # The flow run's page shows one progress artifact per label chunk, each finished.
    assert _progress_since(started) == {
        f"generate-tweet-irony-{mode}-{label}": 100.0
        for mode in ("zero-shot", "few-shot")
        for label in ("irony", "non-irony")
    }
    dataset = load_from_disk(str(tmp_path / "hf"))
    assert sorted(dataset) == ["tweet_irony.few_shot", "tweet_irony.zero_shot"]
    zero = dataset["tweet_irony.zero_shot"]
    assert zero.num_rows == 4
    assert sorted(set(zero["label"])) == ["irony", "non_irony"]
    assert all(zero["text"])

    run_dir = next((tmp_path / "out" / "runs").iterdir())
    again = _cli(["export", str(run_dir), "--out", str(tmp_path / "hf2")], monkeypatch)
    assert "tweet_irony.few_shot: 4 rows" in again


def _progress_since(started: datetime) -> dict[str, float]:
    """Latest value of each progress artifact created since `started`, by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

    only_progress = ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=only_progress)
    return {
        str(artifact.key): float(artifact.data)  # type: ignore[arg-type]
        for artifact in sorted(artifacts, key=lambda a: a.created or started)
        if artifact.created is not None and artifact.created >= started
    }


@pytest.mark.usefixtures("prefect_harness")
def test_generate_stops_at_the_budget_cap(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer() as server:
        config = _config_file(tmp_path, server.base_url, price=10_000.0)
        args = ["generate", "--config", str(config), "--data-dir", str(sample_dir)]
        args += ["--output-dir", str(tmp_path / "out"), "--max-cost", "0.5"]
        with pytest.raises(BudgetExceeded, match=r"max_cost_usd=0\.5"):
            _cli(args, monkeypatch)
        # One booking of $0.40 fits under $0.50, a second does not: at most one per chunk
        # already in flight when the cap was reached.
        assert 0 < server.count() <= 4


def test_export_names_the_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LlmsynthError, match=r"synthetic\.parquet"):
        _cli(["export", str(tmp_path), "--out", str(tmp_path / "x")], monkeypatch)


def test_report_names_the_missing_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LlmsynthError, match=r"results\.parquet"):
        _cli(["report", str(tmp_path)], monkeypatch)
