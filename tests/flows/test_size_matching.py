"""Size matching through the whole DAG: a mode short on one label shrinks every source."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from flows.pipeline import pipeline
from flows.summary import print_summary
from tasks.report import load_run
from tasks.run_dir import RunDir
from tests.fakes.openai_server import FakeOpenAIServer, Reply, echo_responder
from tests.flows.configs import small_config

LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def zero_shot_sports_repeats(kind: str, body: dict[str, Any]) -> Reply:
    """Zero-shot Sports prompts always get the same article, so the duplicate gate keeps one."""
    prompt = str(body["messages"][-1]["content"])
    zero_shot = "Here are real" not in prompt
    if zero_shot and ("about sports" in prompt or "another sports article" in prompt):
        return Reply(text="The home side won the cup final after a late goal in extra time.")
    return echo_responder(kind, body)


@pytest.mark.usefixtures("prefect_harness")
def test_a_mode_short_on_a_label_shrinks_every_source_for_that_label(
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Prefect's loggers do not propagate to the root logger, where caplog listens.
    prefect_logger = logging.getLogger("prefect")
    monkeypatch.setattr(prefect_logger, "handlers", [*prefect_logger.handlers, caplog.handler])
    server = FakeOpenAIServer(zero_shot_sports_repeats, models=["fake-model"])
    with caplog.at_level(logging.WARNING), server:
        config = small_config(server.base_url, tasks=("ag_news",))  # 3 per label
        run_dir = Path(pipeline(config, str(sample_dir), str(tmp_path)))

    runs = pd.read_parquet(run_dir / "runs.parquet")
    # zero_shot accepted 1 Sports row: real and few_shot train on 1 Sports row too.
    assert dict(zip(runs["source"], runs["n_train"], strict=True)) == {
        "real": 10,
        "zero_shot": 10,
        "few_shot": 10,
    }
    assert all(list(names) == LABELS for names in runs["label_names"])
    counts = {s: list(c) for s, c in zip(runs["source"], runs["train_counts"], strict=True)}
    assert counts == {source: [3, 1, 3, 3] for source in ("real", "zero_shot", "few_shot")}

    sizes = json.loads((run_dir / "size_matching.json").read_text())
    assert sizes["policy"] == "equal"
    capped = [s for s in sizes["labels"] if min(s["used"].values()) < s["wanted"]]
    assert [(s["label"], s["have"]["zero_shot"], s["used"]) for s in capped] == [
        ("Sports", 1, {"real": 1, "zero_shot": 1, "few_shot": 1})
    ]
    # One record can reach caplog's handler twice (on "prefect" and on the root logger).
    records = dict.fromkeys(r for r in caplog.records if "size matching" in r.getMessage())
    warnings = [record.getMessage() for record in records]
    assert warnings == [
        "size matching: task ag_news, label Sports: wanted 3, used real 1, zero_shot 1, "
        "few_shot 1. ag_news/Sports: every source trains on 1 row, not the 3 wanted "
        "(zero_shot accepted 1)"
    ]
    shortfall = (
        "Shortfall: ag_news/Sports: every source trains on 1 row, not the 3 wanted "
        "(zero_shot accepted 1)."
    )
    report = (run_dir / "report.md").read_text()
    verdict = report.partition("## Task subjectivity")[0]  # the results section
    assert shortfall in verdict
    assert "| ag_news | Sports | 1 | 1 | 1 |" in verdict
    assert shortfall in (run_dir / "results.md").read_text()
    # The verdict opens the report and ends what `llmsynth run` prints, read from the run.
    short = "Fell short of their generation quota (accepted of wanted): zero_shot/Sports 1 of 3."
    assert short in report.partition("## Results on the real test split")[0]
    console = Console(width=80, record=True, file=io.StringIO())
    print_summary(console, load_run(RunDir(str(run_dir))), str(run_dir / "report.html"))
    printed = console.export_text()
    assert short in " ".join(printed.split())
    assert printed.splitlines()[-1] == f"report: {run_dir / 'report.html'}"
