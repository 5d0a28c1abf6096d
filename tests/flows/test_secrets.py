"""The API key reaches the server and nothing else: no artifact, cache, manifest or log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prefect.settings import get_current_settings
from sqlalchemy.engine import make_url

from flows.pipeline import pipeline
from llmsynth_core.config import ExperimentConfig
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config

SECRET = "sk-test-SECRET-123456"
CHAT = "/v1/chat/completions"


def _config(base_url: str) -> ExperimentConfig:
    return small_config(base_url, ("tweet_irony",), per_label=2, max_test_examples=16, max_steps=2)


@pytest.mark.usefixtures("prefect_harness")
def test_api_key_is_sent_but_never_written_or_logged(
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    # Prefect's loggers do not propagate to the root logger, where caplog listens.
    prefect_logger = logging.getLogger("prefect")
    monkeypatch.setattr(prefect_logger, "handlers", [*prefect_logger.handlers, caplog.handler])
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG), FakeOpenAIServer(api_key=SECRET) as server:
        run_dir = Path(pipeline(_config(server.base_url), str(sample_dir), str(out)))
        sent = [r.headers.get("authorization") for r in server.requests if r.path == CHAT]

    # The key was used: the server checks it and answers 401 to anything else.
    assert len(sent) >= 2 * 2 * 2
    assert set(sent) == {f"Bearer {SECRET}"}
    assert (run_dir / "results.md").exists()

    files = [path for path in out.rglob("*") if path.is_file()]
    suffixes = {path.suffix for path in files}
    assert {".parquet", ".json", ".md", ".sqlite"} <= suffixes
    leaked = [str(path) for path in files if SECRET.encode() in path.read_bytes()]
    assert leaked == []

    # Prefect's own records: flow parameters, task results, artifacts and logs in its database,
    # and any persisted results in its local storage.
    settings = get_current_settings()
    url = settings.server.database.connection_url
    database = Path(make_url(url.get_secret_value() if url else "").database or "")
    assert database.is_file(), f"no Prefect database at {database}; the check would prove nothing"
    assert SECRET.encode() not in database.read_bytes()
    for wal in database.parent.glob(database.name + "-wal"):
        assert SECRET.encode() not in wal.read_bytes()
    storage = Path(settings.results.local_storage_path)
    if storage.is_dir():
        stored = [p for p in storage.rglob("*") if p.is_file()]
        assert not [str(p) for p in stored if SECRET.encode() in p.read_bytes()]

    assert caplog.records, "no log records were captured; the log check would prove nothing"
    assert not [r.getMessage() for r in caplog.records if SECRET in r.getMessage()]
    assert SECRET not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out
    assert SECRET not in captured.err
