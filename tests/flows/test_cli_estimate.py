"""`llmsynth estimate`: the table and totals the CLI prints match the core estimate."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from llmsynth_core.config import load_experiment, preset_path
from llmsynth_core.costs import estimate
from llmsynth_core.registry import load_registry, select_tasks


def test_estimate_prints_every_task_and_the_totals() -> None:
    result = CliRunner().invoke(app, ["estimate", "--preset", "paper"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    config = load_experiment(preset_path("paper"))
    expected = estimate(config, select_tasks(load_registry(), config.tasks))
    total = next(line for line in result.output.splitlines() if "total" in line)
    assert f"{expected.requests:,}" in total
    assert f"{expected.input_tokens:,}" in total
    assert f"{expected.usd:,.2f}" in total
    assert expected.usd > 0
    for task in config.tasks:
        assert task in result.output
    assert f"about {expected.hours:,.2f} h" in result.output


def test_estimate_takes_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\ntasks: [sms_spam]\nllm: {endpoint: 'http://127.0.0.1:9/v1', model: m}\n"
        "generation: {per_label: 10, modes: [few_shot]}\nruntime: {requests_per_minute: 60}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["estimate", "--config", str(path)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "paced by runtime.requests_per_minute=60" in result.output
    assert "few_shot" in result.output and "zero_shot" not in result.output
